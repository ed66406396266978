CREATE TABLE sales (id INTEGER PRIMARY KEY, sold_on TEXT NOT NULL, category TEXT NOT NULL, amount_cents INTEGER NOT NULL);
INSERT INTO sales VALUES (1, '2024-03-01', 'cards', 700);
INSERT INTO sales VALUES (2, '2024-03-01', 'books', 700);
INSERT INTO sales VALUES (3, '2024-04-01', 'books', 1);
