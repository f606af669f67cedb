import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs'
import { verifyCheckpoint } from './checkpoint.js'
import { originOf, verifyExport, type AuditExport, type OfflineResult } from './offline.js'
import { sameBytes } from './verify.js'
import { joinRuns, type VerifyWorkers } from './verify-workers.js'

// The export file on disk. It is one JSON document (coffer-audit-export/v1), laid out so
// that it can be checked in parallel: everything but the entries on the first line, which
// ends with `"entries":[`, then one entry per line, then `]}`. A verifier that finds this
// layout cuts the lines into runs and lets worker threads parse and verify them (as the
// server verifies runs of stored rows); any other layout of the same JSON, or any problem,
// is verified the plain way on one thread, which names what is wrong.

const HEAD_END = '"entries":['
const TAIL = ']}'

/** Writes `exp` in the layout above (mode 0600: audit metadata is private). */
export function writeExportFile(path: string, exp: AuditExport): void {
  const { entries, ...rest } = exp
  const head = JSON.stringify({ ...rest, entries: [] })
  if (!head.endsWith(`${HEAD_END}]}`)) throw new Error('entries must be the last field of an export')
  const fd = openSync(path, 'w', 0o600)
  try {
    writeSync(fd, `${head.slice(0, -2)}\n`)
    const chunk: string[] = []
    for (let i = 0; i < entries.length; i++) {
      chunk.push(JSON.stringify(entries[i]) + (i < entries.length - 1 ? ',' : ''))
      if (chunk.length === 4096 || i === entries.length - 1) {
        writeSync(fd, `${chunk.join('\n')}\n`)
        chunk.length = 0
      }
    }
    writeSync(fd, `${TAIL}\n`)
  } finally {
    closeSync(fd)
  }
}

/** Entries verified per worker task (a power of two, so each run is whole subtrees of the tree). */
export const EXPORT_RUN = 8192

/**
 * Verifies an export file: on `pool`'s threads when the file has the layout above and at
 * least two runs of entries; otherwise (or when anything fails) like verifyExport on this
 * thread. Throws only when the file cannot be read or is not JSON.
 */
export async function verifyExportFile(
  path: string,
  trustedKey: string | undefined,
  pool: VerifyWorkers | null,
  run = EXPORT_RUN,
): Promise<OfflineResult> {
  const fast = pool ? await verifyByLines(path, trustedKey, pool, run).catch(() => null) : null
  return fast ?? verifyExport(JSON.parse(readFileSync(path, 'utf8')) as AuditExport, trustedKey)
}

/**
 * Where each line of a file starts (the last entry is the file's size), read through one
 * reused buffer: the threads read the lines themselves, so this thread never holds the file.
 */
function lineStarts(fd: number): number[] {
  const starts: number[] = [0]
  const buf = Buffer.allocUnsafe(1 << 20)
  let at = 0
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, at)
    if (n <= 0) break
    const chunk = n === buf.length ? buf : buf.subarray(0, n)
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) starts.push(at + i + 1)
    at += n
  }
  if (starts[starts.length - 1] !== at) starts.push(at)
  return starts
}

/** Bytes start … end of a file as UTF-8 text. */
function readText(fd: number, start: number, end: number): string {
  const buf = Buffer.allocUnsafe(end - start)
  for (let got = 0; got < buf.length; ) {
    const n = readSync(fd, buf, got, buf.length - got, start + got)
    if (n === 0) throw new Error('the export file is shorter than it was')
    got += n
  }
  return buf.toString('utf8')
}

/** The parallel check; null when the layout is not the one above or anything does not verify. */
async function verifyByLines(
  path: string,
  trustedKey: string | undefined,
  pool: VerifyWorkers,
  run: number,
): Promise<OfflineResult | null> {
  // Line starts: the header, each entry, the closing line, and the end of the file.
  const fd = openSync(path, 'r')
  let starts: number[]
  let headLine: string
  let tail: string
  try {
    starts = lineStarts(fd)
    if (starts.length < 4) return null
    headLine = readText(fd, 0, starts[1]! - 1)
    tail = readText(fd, starts[starts.length - 2]!, starts[starts.length - 1]!)
  } finally {
    closeSync(fd)
  }
  const count = starts.length - 3
  if (count < 2 * run) return null
  if (!headLine.endsWith(HEAD_END) || tail.trimEnd() !== TAIL) return null
  const head = JSON.parse(headLine + TAIL) as AuditExport
  if (head.format !== 'coffer-audit-export/v1' || typeof head.workspace?.id !== 'string') return null
  const key = trustedKey ?? head.publicKey
  if (trustedKey && trustedKey !== head.publicKey) return null
  const signed = verifyCheckpoint(head.checkpoint?.note, key, { origin: originOf(head.workspace.id) })
  if (
    !signed ||
    head.checkpoint.treeSize !== Number(signed.treeSize) ||
    head.checkpoint.rootHash !== Buffer.from(signed.rootHash).toString('base64')
  )
    return null
  const treeSize = Number(signed.treeSize)
  if (treeSize > count) return null

  const tasks = []
  for (let from = 1; from <= count; from += run) {
    const to = Math.min(count, from + run - 1)
    tasks.push({
      source: { engine: 'export-file' as const, path, byteStart: starts[from]!, byteEnd: starts[to + 1]! },
      workspaceId: head.workspace.id,
      fromSeq: from,
      toSeq: to,
      treeLeaves: Math.max(0, Math.min(to, treeSize) - (from - 1)),
    })
  }
  const joined = joinRuns(await pool.run(tasks))
  if (!joined || joined.range.size !== treeSize || !sameBytes(joined.range.root(), signed.rootHash)) return null
  return {
    ok: true,
    signatureOk: true,
    keyPinned: !!trustedKey,
    rootOk: true,
    treeSize,
    problems: [],
    chain: { ok: true, checked: count, head: Buffer.from(joined.last).toString('hex') },
  }
}
