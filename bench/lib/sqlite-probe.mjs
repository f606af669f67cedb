// Preloaded into the Coffer server by bench/http.ts (`node --import <this> bin/coffer.js
// server`) to make group commit observable from outside without touching src/: it counts,
// in better-sqlite3, the statements prepared, and the BEGIN and COMMIT statements Kysely
// sends (one COMMIT = one durable, fsynced batch), and the audit rows inserted. On SIGUSR2 it writes the counters as
// JSON to $COFFER_BENCH_PROBE_FILE. Cost: one string comparison per prepared statement.
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const file = process.env.COFFER_BENCH_PROBE_FILE
if (file) {
  // Resolve better-sqlite3 from the project (cwd may be a temp dir).
  const require = createRequire(join(process.env.COFFER_BENCH_ROOT ?? process.cwd(), 'package.json'))
  const Database = require('better-sqlite3')
  const stats = { prepared: 0, begins: 0, commits: 0, rollbacks: 0, savepoints: 0, auditInserts: 0 }
  /** Prepared statements by their first 120 characters. */
  const statements = new Map()
  const prepare = Database.prototype.prepare
  Database.prototype.prepare = function (sql, ...rest) {
    stats.prepared++
    const head = sql.slice(0, 120)
    statements.set(head, (statements.get(head) ?? 0) + 1)
    if (head.startsWith('insert into "audit_entries"')) stats.auditInserts++
    if (sql.length <= 24) {
      const s = sql.trim().toLowerCase()
      if (s === 'commit') stats.commits++
      else if (s === 'begin') stats.begins++
      else if (s === 'rollback') stats.rollbacks++
    }
    if (sql.startsWith('SAVEPOINT')) stats.savepoints++
    return prepare.call(this, sql, ...rest)
  }
  process.on('SIGUSR2', () => {
    writeFileSync(file, JSON.stringify({ ...stats, statements: Object.fromEntries(statements), time: Date.now() }))
  })
}
