'use strict';
// Exercises inventory.js from the current directory with a replaced warehouse client.
const path = require('path');
const api = require(path.join(process.cwd(), 'api.js'));

const STOCK = {
  A100: { name: 'bolt', priceCents: 25, qty: 400 },
  B200: { name: 'nut', priceCents: 10, qty: 1000 },
  C300: { name: 'washer', priceCents: 5, qty: 250 },
  D400: { name: 'hinge', priceCents: 180, qty: 35 },
  E500: { name: 'gasket', priceCents: 999, qty: 0 },
};
api.fetchItem = (id) => {
  return new Promise((resolve) => {
    setTimeout(() => resolve(STOCK[id] ? { id, ...STOCK[id] } : null), 3);
  });
};

const inventory = require(path.join(process.cwd(), 'inventory.js'));

async function main() {
  const cases = [
    ['A100', 'B200'],
    ['C300', 'Z999', 'D400', 'Q111'],
    [],
    ['A100', 'A100', 'E500'],
    ['nope'],
  ];
  for (const ids of cases) {
    try {
      const r = await inventory.stockValue(ids);
      console.log(JSON.stringify([ids, r.totalCents, r.missing]));
    } catch (err) {
      console.log(JSON.stringify([ids, `raised ${err.name}`]));
    }
  }
  try {
    console.log((await inventory.report(['D400', 'X1', 'B200'])).split('\n').join(' / '));
    console.log((await inventory.report([])).split('\n').join(' / '));
  } catch (err) {
    console.log(`report raised ${err.name}`);
  }
}

main();
