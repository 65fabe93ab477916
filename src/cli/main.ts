#!/usr/bin/env node
// The `wharf` command's entry point: wires the remote client into the command tree and runs it.
import { connect } from '../client/index.js';
import { runCli } from './program.js';

const code = await runCli(
  { connect, stdout: process.stdout, stderr: process.stderr, env: process.env },
  process.argv.slice(2),
);
process.exitCode = code;
