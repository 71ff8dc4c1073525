// Runs a script of this folder in a child Node process (through tsx, so `rx-batcher/dataloader`
// resolves to the TypeScript sources as in Jest), with PEER_DATALOADER set to `library`, and
// resolves with the JSON it printed.
const { execFile } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..', '..', '..');
const tsx = path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');

module.exports = function runInChild(script, library) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [tsx, path.join(__dirname, script)],
      { cwd: root, env: { ...process.env, PEER_DATALOADER: library || '' }, timeout: 20000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${script}: ${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout))),
    );
  });
};
