import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { cycles, type ImportEdge, importsOf, readGraph } from './import-graph.js'
import { MUST_NOT_LOAD, MUST_NOT_REACH, NO_SQL, ROOMS, roomOf, violation } from './layers.js'

// Enforces the layer rules written in docs/architecture.md over the import graph of src/.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const graph = readGraph(ROOT, 'src')
const local = graph.edges.filter((e) => e.to.startsWith('src/'))

describe('layers', () => {
  it('every source file is in a room', () => {
    assert.deepEqual(
      graph.files.filter((f) => !roomOf(f)),
      [],
    )
  })

  it('every import keeps the layer rules', () => {
    assert.deepEqual(graph.edges.map(violation).filter(Boolean), [])
  })

  it('every relative import names a file that exists', () => {
    const files = new Set(graph.files)
    assert.deepEqual(
      local.filter((e) => !files.has(e.to)).map((e) => `${e.from}:${e.line} → ${e.to}`),
      [],
    )
  })

  it('no room reaches a forbidden room or package through static imports', () => {
    const runtime = graph.edges.filter((e) => !e.dynamic && !e.typeOnly)
    const next = new Map<string, string[]>()
    for (const e of runtime) next.set(e.from, [...(next.get(e.from) ?? []), e.to])
    const problems: string[] = []
    for (const f of graph.files) {
      const room = roomOf(f)!
      const rooms = MUST_NOT_REACH[room] ?? []
      const packages = MUST_NOT_LOAD[room] ?? []
      if (!rooms.length && !packages.length) continue
      const seen = new Map<string, string>([[f, f]])
      const queue = [f]
      while (queue.length) {
        const v = queue.shift()!
        for (const w of next.get(v) ?? []) {
          if (seen.has(w)) continue
          seen.set(w, v)
          const local = w.startsWith('src/')
          if (local ? rooms.includes(roomOf(w)!) : packages.includes(w)) {
            const path = [w]
            for (let p = v; p !== f; p = seen.get(p)!) path.unshift(p)
            problems.push(`${[f, ...path].join(' → ')}`)
          } else if (local) queue.push(w)
        }
      }
    }
    assert.deepEqual(problems, [])
  })

  it('no import cycles between files', () => {
    const pairs = local.filter((e) => !e.dynamic).map((e) => [e.from, e.to] as const)
    assert.deepEqual(cycles(graph.files, pairs), [])
  })

  it('no import cycles between rooms', () => {
    const rooms = [...new Set(ROOMS.map((r) => r.room))]
    const pairs = local.filter((e) => !e.dynamic).map((e) => [roomOf(e.from)!, roomOf(e.to)!] as const)
    assert.deepEqual(cycles(rooms, pairs), [])
  })

  it('crypto, server and client code build no SQL: the database is reached through services', () => {
    const query =
      /\.(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)\(|\bsql`|\bsql<[^>]*>`|\b(SELECT [\w*]|INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM)\b/
    const found = graph.files
      .filter((f) => NO_SQL.includes(roomOf(f)!))
      .flatMap((f) =>
        graph.text
          .get(f)!
          .split('\n')
          .flatMap((l, i) => (query.test(l) ? [`${f}:${i + 1}`] : [])),
      )
    assert.deepEqual(found, [])
  })

  it('docs/architecture.md names every room', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8')
    const missing = ROOMS.filter((r) => !doc.includes(`\`${r.path.replace(/\/$/, '')}`)).map((r) => r.path)
    assert.deepEqual(missing, [])
  })
})

describe('the layer check itself', () => {
  const edge = (from: string, text: string): ImportEdge => importsOf(ROOT, from, text)[0]!

  it('refuses a crypto file that imports the server', () => {
    const e = edge('src/crypto/envelope.ts', "import { buildApp } from '../server/app.js'\n")
    assert.equal(e.to, 'src/server/app.ts')
    assert.match(violation(e) ?? '', /\(crypto\) imports src\/server\/app\.ts \(server\)/)
  })

  it('refuses SQL drivers in crypto, even as types', () => {
    assert.ok(violation(edge('src/crypto/x.ts', "import type { Kysely } from 'kysely'\n")))
  })

  it('refuses a client command that imports storage, allows it lazily for host commands only', () => {
    assert.ok(violation(edge('src/cli/commands/run.ts', "import { openStore } from '../../storage/database.js'\n")))
    assert.equal(violation(edge('src/cli/main.ts', "const m = await import('./host/server.js')\n")), null)
    assert.ok(violation(edge('src/cli/main.ts', "import { serve } from './host/server.js'\n")))
  })

  it('refuses a package outside the API contract, and zod loaded by a client command', () => {
    assert.ok(violation(edge('src/api/x.ts', "import { Kysely } from 'kysely'\n")))
    assert.equal(violation(edge('src/api/x.ts', "import { z } from 'zod'\n")), null)
    assert.ok(violation(edge('src/client/x.ts', "import { z } from 'zod'\n")))
    assert.equal(violation(edge('src/client/x.ts', "import type { z } from 'zod'\n")), null)
  })

  it('reads type-only imports as such', () => {
    assert.equal(edge('src/a.ts', "import type { X } from './b.js'").typeOnly, true)
    assert.equal(edge('src/a.ts', "import { type X, type Y } from './b.js'").typeOnly, true)
    assert.equal(edge('src/a.ts', "import { type X, y } from './b.js'").typeOnly, false)
  })

  it('finds a cycle', () => {
    assert.deepEqual(
      cycles(
        ['a', 'b', 'c'],
        [
          ['a', 'b'],
          ['b', 'c'],
          ['c', 'a'],
        ],
      ),
      [['a', 'b', 'c']],
    )
  })
})
