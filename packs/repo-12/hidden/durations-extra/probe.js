'use strict';
// Format and parse a range of durations; one line per case (the expected lines live in the assert).
const path = require('node:path');
const { parseDuration, formatDuration, totalDuration } = require(path.join(process.cwd(), 'lib'));

for (const seconds of [0, 1, 59, 60, 61, 90, 150, 599, 3599, 3600, 3630, 3661, 7322, 86399]) {
  console.log(`format ${seconds} ${formatDuration(seconds)}`);
}
for (const text of ['59m59s', '2h2m2s', '10m', '0s']) {
  console.log(`round trip ${text} ${formatDuration(parseDuration(text))}`);
}
console.log(`total ${totalDuration(['45s', '45s', '1m30s'])}`);
