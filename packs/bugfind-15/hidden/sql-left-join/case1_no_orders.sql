CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status TEXT NOT NULL, amount_cents INTEGER NOT NULL);
INSERT INTO customers VALUES (1, 'Quinn', NULL);
INSERT INTO customers VALUES (2, 'Pia', 'Oslo');
