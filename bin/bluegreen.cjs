#!/usr/bin/env node
// npx/npm bin entry: runs the TypeScript CLI through tsx, no build step.
'use strict';
require('tsx/cjs');
require('./bluegreen.ts').cli();
