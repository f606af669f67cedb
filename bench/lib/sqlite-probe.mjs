// Preloaded into the Coffer server by bench/http.ts (`node --import <this> bin/coffer.js
// server`) to make group commit observable from outside without touching src/: it counts,
// in better-sqlite3, every statement executed (by SQL text), among them the BEGIN and
// COMMIT statements Kysely sends (one COMMIT = one durable, fsynced batch) and the audit
// rows inserted. On SIGUSR2 it writes the counters as JSON to $COFFER_BENCH_PROBE_FILE.
// It also times each statement (better-sqlite3 is synchronous: the event loop waits).
// Cost: two clock reads and two Map updates per executed statement.
// Worker threads (the audit thread on SQLite) get the probe too: the main thread's copy wraps
// `Worker` so that each thread imports this file before its own, and on SIGUSR2 asks every
// thread for its counters (BroadcastChannel) and adds them to its own.
import { writeFileSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BroadcastChannel, isMainThread } from 'node:worker_threads'

const file = process.env.COFFER_BENCH_PROBE_FILE
if (file) {
  // Resolve better-sqlite3 from the project (cwd may be a temp dir).
  const require = createRequire(join(process.env.COFFER_BENCH_ROOT ?? process.cwd(), 'package.json'))
  const Database = require('better-sqlite3')
  /** Executions by the statement's first 120 characters. */
  const executed = new Map()
  /** Milliseconds spent inside better-sqlite3 (the event loop is blocked meanwhile), by statement. */
  const spent = new Map()
  let prepared = 0
  let patched = false

  const count = (source, ms) => {
    const head = source.length > 120 ? source.slice(0, 120) : source
    executed.set(head, (executed.get(head) ?? 0) + 1)
    spent.set(head, (spent.get(head) ?? 0) + ms)
  }
  const patchStatement = (proto) => {
    for (const method of ['run', 'get', 'all', 'iterate']) {
      const original = proto[method]
      if (typeof original !== 'function') continue
      proto[method] = function (...args) {
        const t = performance.now()
        try {
          return original.apply(this, args)
        } finally {
          count(this.source, performance.now() - t)
        }
      }
    }
  }
  const prepare = Database.prototype.prepare
  Database.prototype.prepare = function (...args) {
    prepared++
    const stmt = prepare.apply(this, args)
    if (!patched) {
      patched = true
      patchStatement(Object.getPrototypeOf(stmt))
    }
    return stmt
  }

  const channel = new BroadcastChannel('coffer-bench-sqlite-probe')
  channel.unref()
  if (!isMainThread) {
    channel.onmessage = (e) => {
      if (e.data?.ask) channel.postMessage({ answer: e.data.ask, prepared, executed: [...executed], spent: [...spent] })
    }
  } else {
    const threads = createRequire(import.meta.url)('node:worker_threads')
    const Original = threads.Worker
    const probe = import.meta.url
    threads.Worker = class ProbedWorker extends Original {
      constructor(filename, options = {}) {
        if (options.eval || !(filename instanceof URL || typeof filename === 'string')) super(filename, options)
        else {
          const href = filename instanceof URL ? filename.href : pathToFileURL(filename).href
          super(`import(${JSON.stringify(probe)}).then(() => import(${JSON.stringify(href)}))`, { ...options, eval: true })
        }
      }
    }
    syncBuiltinESMExports()
    process.on('SIGUSR2', () => {
      const ask = `${Date.now()}-${Math.random()}`
      const answers = []
      channel.onmessage = (e) => {
        if (e.data?.answer === ask) answers.push(e.data)
      }
      channel.postMessage({ ask })
      setTimeout(() => write(answers), 150)
    })
  }

  const write = (answers) => {
    const all = new Map(executed)
    const allMs = new Map(spent)
    let allPrepared = prepared
    for (const a of answers) {
      allPrepared += a.prepared
      for (const [k, n] of a.executed) all.set(k, (all.get(k) ?? 0) + n)
      for (const [k, ms] of a.spent) allMs.set(k, (allMs.get(k) ?? 0) + ms)
    }
    let executions = 0
    let begins = 0
    let commits = 0
    let rollbacks = 0
    let savepoints = 0
    let auditInserts = 0
    let sqlMs = 0
    let commitMs = 0
    // The main thread's own time: while it is inside better-sqlite3, its event loop waits.
    let loopSqlMs = 0
    let loopCommitMs = 0
    for (const [sql, ms] of spent) {
      loopSqlMs += ms
      if (sql.trim().toLowerCase() === 'commit') loopCommitMs += ms
    }
    for (const [sql, n] of all) {
      executions += n
      sqlMs += allMs.get(sql) ?? 0
      const s = sql.trim().toLowerCase()
      if (s === 'begin' || s === 'begin immediate') begins += n
      else if (s === 'commit') {
        commits += n
        commitMs += allMs.get(sql) ?? 0
      } else if (s === 'rollback') rollbacks += n
      else if (s.startsWith('savepoint')) savepoints += n
      // The request path queues its audit entries (audit_queue); the sequencer integrates them later.
      else if (s.startsWith('insert into audit_queue') || s.startsWith('insert into "audit_queue"')) auditInserts += n
    }
    writeFileSync(
      file,
      JSON.stringify({
        prepared: allPrepared,
        executions,
        begins,
        commits,
        rollbacks,
        savepoints,
        auditInserts,
        sqlMs,
        commitMs,
        loopSqlMs,
        loopCommitMs,
        statements: Object.fromEntries(all),
        statementMs: Object.fromEntries(allMs),
        time: Date.now(),
        threads: 1 + answers.length,
      }),
    )
  }
}
