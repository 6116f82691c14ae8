#!/usr/bin/env node
// The installed `temper` command: the compiled CLI (npm run build writes dist/).
require('../dist/main.js');
