# Exercises shop/cart.py from the current directory; one line per case.
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.getcwd(), "shop"))


def state(cart):
    return [cart.owner, cart.count(), cart.total_cents()]


def run():
    from cart import Cart

    alice = Cart("alice")
    alice.add("book", 1299)
    print("alice", json.dumps(state(alice)))
    bob = Cart("bob")
    print("bob new", json.dumps(state(bob)))
    bob.add("pen", 150, 3)
    print("bob", json.dumps(state(bob)))
    print("alice again", json.dumps(state(alice)))
    carol = Cart("carol", [{"sku": "mug", "price_cents": 800, "qty": 2}])
    carol.add("tea", 450)
    print("carol", json.dumps(state(carol)))
    dave = Cart("dave")
    print("dave new", json.dumps(state(dave)))
    try:
        dave.add("cup", 300, 0)
        print("qty 0 accepted")
    except ValueError:
        print("qty 0 rejected")
    print("dave", json.dumps(state(dave)))


try:
    run()
except Exception as exc:
    print("raised", type(exc).__name__)
