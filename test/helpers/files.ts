import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Every file under `dir`, recursively (for checks that nothing secret was written to disk). */
export function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = statSync(p, { throwIfNoEntry: false })
    if (!st) continue
    if (st.isDirectory()) out.push(...filesUnder(p))
    else if (st.isFile()) out.push(p)
  }
  return out
}
