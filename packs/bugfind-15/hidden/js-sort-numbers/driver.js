'use strict';
// Exercises lib/stats.js from the current directory; one JSON line per case.
const path = require('path');
const stats = require(path.join(process.cwd(), 'lib', 'stats.js'));

function show(label, fn) {
  let value;
  try {
    value = fn();
  } catch (err) {
    value = `raised ${err.name}`;
  }
  console.log(JSON.stringify([label, value === undefined ? 'undefined' : value]));
}

const report = [120, 80, 95, 1000, 300];
show('p50 report', () => stats.percentile(report, 50));
show('p90 report', () => stats.percentile(report, 90));
show('p100 report', () => stats.percentile(report, 100));
show('p25 four', () => stats.percentile([9, 100, 25, 1000], 25));
show('p50 four', () => stats.percentile([9, 100, 25, 1000], 50));
show('p20 decimals', () => stats.percentile([2.5, 10, 0.5, 7, 33], 20));
show('p50 negatives', () => stats.percentile([-10, 5, -2, 40, 3], 50));
show('empty', () => stats.percentile([], 50));
show('p0', () => stats.percentile([1, 2], 0));
show('summary', () => stats.summary(report));
show('summary one', () => stats.summary([42]));
const input = [30, 4, 200];
stats.percentile(input, 50);
show('input untouched', () => input);
