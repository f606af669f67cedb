// The floor under `coffer run` in bench/cli-run.ts: Node.js making the same one audited
// environment fetch over node:net, with no Coffer code at all (no bundle, no parsing beyond the
// status line), then exiting. What this costs over `node -e 0` any Node.js client pays.
//
//   node bench/lib/one-request.cjs PATH     (COFFER_URL and COFFER_TOKEN from the environment)
'use strict'
const { connect } = require('node:net')

const url = new URL(process.env.COFFER_URL)
const socket = connect(Number(url.port), url.hostname)
socket.write(
  `GET ${process.argv[2]} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${process.env.COFFER_TOKEN}\r\nconnection: close\r\n\r\n`,
)
let head = ''
socket.setEncoding('latin1')
socket.on('data', (chunk) => {
  if (head.length < 12) head += chunk.slice(0, 12)
})
socket.on('end', () => {
  process.exitCode = head.startsWith('HTTP/1.1 200') ? 0 : 1
})
socket.on('error', () => {
  process.exitCode = 2
})
