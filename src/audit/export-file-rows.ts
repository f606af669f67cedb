import { closeSync, openSync, readSync } from 'node:fs'
import { entryText } from './entry.js'
import type { ExportedEntry } from './offline.js'
import { PAGE, type Row } from './verify-run.js'
import type { VerifySource } from './verify-workers.js'

/**
 * The entries on lines byteStart … byteEnd of an export file (export-file.ts), parsed a page
 * at a time into rows with their canonical text (entryText of the entry as parsed, as
 * verifyExport computes it). An entry of another workspace, or whose hashes are not strings,
 * stops the run (verifyExport then names it). Reads only the file: no database code.
 */
export async function* exportFileRows(s: Extract<VerifySource, { engine: 'export-file' }>, workspaceId: string): AsyncIterable<Row[]> {
  const buf = Buffer.allocUnsafe(s.byteEnd - s.byteStart)
  const fd = openSync(s.path, 'r')
  try {
    let got = 0
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, s.byteStart + got)
      if (n === 0) throw new Error('the export file is shorter than it was')
      got += n
    }
  } finally {
    closeSync(fd)
  }
  const text = buf.toString('utf8')
  let page: Row[] = []
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf('\n', at)
    if (end === -1) end = text.length
    const line = text.charCodeAt(end - 1) === 44 /* , */ ? text.slice(at, end - 1) : text.slice(at, end)
    at = end + 1
    if (!line) continue
    const e = JSON.parse(line) as ExportedEntry
    if (e?.workspaceId !== workspaceId || typeof e.prevHash !== 'string' || typeof e.hash !== 'string')
      throw new Error('not an entry of this export')
    page.push([
      typeof e.seq === 'number' ? e.seq : Number.NaN,
      textOf(e),
      e.prevHash.length === 64 && e.hash.length === 64 ? e.prevHash + e.hash : null,
    ])
    if (page.length === PAGE) {
      yield page
      page = []
    }
  }
  if (page.length) yield page
}

/** entryText of a parsed entry; null when it cannot be serialised (a field missing, say). */
function textOf(e: ExportedEntry): string | null {
  try {
    return entryText(e)
  } catch {
    return null
  }
}
