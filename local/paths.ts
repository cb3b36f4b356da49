// Where local mode finds the repository's host files and keeps its own state.
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..');
export const NGINX_DIR = path.join(REPO_ROOT, 'nginx');
export const APP_ENTRY = path.join(REPO_ROOT, 'app', 'server.js');
/** Where `npm start` keeps its rendered config, logs and pid files (gitignored). */
export const LOCAL_STATE_DIR = path.join(REPO_ROOT, '.bluegreen', 'local');
