// Real `coffer server` processes for tests that need a process boundary: crashes (kill -9),
// several nodes, the built CLI. Uses the bundle in dist/ (npm test builds it first).
import { spawn, type ChildProcess } from 'node:child_process'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import type { JsonBody } from './json-body.js'

export const ROOT = join(import.meta.dirname, '..', '..')
export const BIN = join(ROOT, 'bin', 'coffer.js')

export function ensureBuilt(): void {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
}

/** The environment of a child: nothing Coffer-related inherited, then `extra`. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('COFFER_') && k !== 'DATABASE_URL' && k !== 'REDIS_URL') e[k] = v
  return { ...e, ...extra }
}

/** Resolves with a server child's base URL once it prints that it listens (on stderr or stdout). */
export function waitListening(child: ChildProcess, name = 'the server', timeoutMs = 20_000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let buf = ''
    const t = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs / 1000} s: ${buf}`)), timeoutMs)
    const onData = (d: Buffer) => {
      buf = (buf + d.toString()).slice(-4000)
      const m = /listening on (https?:\/\/[^\s]+)/.exec(buf)
      if (m) {
        clearTimeout(t)
        resolve(m[1]!.replace('localhost', '127.0.0.1'))
      }
    }
    child.stderr?.on('data', onData)
    child.stdout?.on('data', onData)
    child.once('exit', (code, sig) => {
      clearTimeout(t)
      reject(new Error(`${name} exited (${code ?? sig}) before listening: ${buf}`))
    })
  })
}

/** Starts `coffer server` and resolves with its base URL once it listens. */
export async function startServer(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'server', '--host', '127.0.0.1', '--port', '0', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return { child, url: await waitListening(child) }
}

/** Stops a child with SIGTERM (SIGKILL after 5 s). */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(t)
}

/** Kills a child with SIGKILL and waits for it to be gone. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

export interface JsonResponse {
  status: number
  body: JsonBody
}

/** A JSON request over node:http. */
export function request(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  agent?: http.Agent,
  userAgent = 'coffer-test',
  timeoutMs = 30_000,
): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const req = http.request(
      base + path,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          'user-agent': userAgent,
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: unknown = text
          try {
            parsed = text ? JSON.parse(text) : undefined
          } catch {
            /* keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)))
    req.on('error', reject)
    req.end(payload)
  })
}
