import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The raw durability baseline: sequential 4 KiB write + fsync of one file in `dir` (the data
 * directory's filesystem) for `seconds` — what one durable commit costs on this disk.
 */
export function fsyncBaseline(dir: string, seconds: number): { perSec: number; p50: number; p99: number } {
  const file = join(dir, 'fsync-probe')
  const fd = openSync(file, 'w')
  const buf = randomBytes(4096)
  const lat: number[] = []
  const end = performance.now() + seconds * 1000
  try {
    while (performance.now() < end) {
      const t = performance.now()
      writeSync(fd, buf, 0, buf.length, 0)
      fsyncSync(fd)
      lat.push(performance.now() - t)
    }
  } finally {
    closeSync(fd)
    rmSync(file, { force: true })
  }
  lat.sort((a, b) => a - b)
  const at = (p: number) => lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 100))] ?? NaN
  return { perSec: lat.length / seconds, p50: at(50), p99: at(99) }
}
