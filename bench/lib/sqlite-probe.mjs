// Preloaded into the Coffer server by bench/http.ts (`node --import <this> bin/coffer.js
// server`) to make group commit observable from outside without touching src/: it counts,
// in better-sqlite3, every statement executed (by SQL text), among them the BEGIN and
// COMMIT statements Kysely sends (one COMMIT = one durable, fsynced batch) and the audit
// rows inserted. On SIGUSR2 it writes the counters as JSON to $COFFER_BENCH_PROBE_FILE.
// It also times each statement (better-sqlite3 is synchronous: the event loop waits).
// Cost: two clock reads and two Map updates per executed statement.
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

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

  process.on('SIGUSR2', () => {
    let executions = 0
    let begins = 0
    let commits = 0
    let rollbacks = 0
    let savepoints = 0
    let auditInserts = 0
    let sqlMs = 0
    let commitMs = 0
    for (const [sql, n] of executed) {
      executions += n
      sqlMs += spent.get(sql) ?? 0
      const s = sql.trim().toLowerCase()
      if (s === 'begin') begins += n
      else if (s === 'commit') {
        commits += n
        commitMs += spent.get(sql) ?? 0
      } else if (s === 'rollback') rollbacks += n
      else if (s.startsWith('savepoint')) savepoints += n
      // The request path queues its audit entries (audit_queue); the sequencer integrates them later.
      else if (s.startsWith('insert into audit_queue') || s.startsWith('insert into "audit_queue"')) auditInserts += n
    }
    writeFileSync(
      file,
      JSON.stringify({
        prepared,
        executions,
        begins,
        commits,
        rollbacks,
        savepoints,
        auditInserts,
        sqlMs,
        commitMs,
        statements: Object.fromEntries(executed),
        statementMs: Object.fromEntries(spent),
        time: Date.now(),
      }),
    )
  })
}
