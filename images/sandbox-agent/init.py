"""PID 1 of the agent sandbox: reaps orphans and never exits on its own.

It has no child to wait for, so killing every process of the agent user (the harness does
that at a command's deadline) cannot stop the container; processes orphaned by a killed fork
bomb are reaped here instead of holding the PIDs cap as zombies. Signals from inside the
container cannot kill PID 1 (it installs no handlers).
"""
import os
import time

while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.2)
