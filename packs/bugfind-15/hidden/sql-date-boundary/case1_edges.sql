CREATE TABLE sales (id INTEGER PRIMARY KEY, sold_on TEXT NOT NULL, category TEXT NOT NULL, amount_cents INTEGER NOT NULL);
INSERT INTO sales VALUES (1, '2024-02-29', 'toys', 100);
INSERT INTO sales VALUES (2, '2024-03-01', 'toys', 250);
INSERT INTO sales VALUES (3, '2024-03-01', 'toys', 250);
INSERT INTO sales VALUES (4, '2024-03-02', 'pens', 40);
INSERT INTO sales VALUES (5, '2024-03-31', 'pens', 60);
INSERT INTO sales VALUES (6, '2024-04-01', 'pens', 999);
INSERT INTO sales VALUES (7, '2023-03-15', 'toys', 5000);
