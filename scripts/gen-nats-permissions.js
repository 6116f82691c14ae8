// Writes the chart's copy of the services' NATS permissions from the table in
// packages/bus/src/permissions.ts (built first: npm run gen:nats-permissions).
// test/nats-permissions.test.ts fails while the two differ.
const fs = require('node:fs');
const path = require('node:path');
const { chartPermissions, CHART_PERMISSIONS_FILE } = require('../packages/bus/dist/permissions');

const file = path.join(__dirname, '..', CHART_PERMISSIONS_FILE);
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(chartPermissions(), null, 2) + '\n');
console.log(`wrote ${CHART_PERMISSIONS_FILE}`);
