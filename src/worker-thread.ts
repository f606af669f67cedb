// A leaf shared by src/crypto (reseal threads) and src/audit (verification threads): it
// imports only the platform, so the CLI's offline audit verification starts threads without
// reaching src/ops.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'

/**
 * Starts the worker thread whose entry is `name` beside `base` (the caller's import.meta.url):
 * from src/ (tests, benchmarks, tsx) the `.ts` file, in the bundle `dist/<name>.js`.
 *
 * @NOTE from src/ the worker registers tsx itself: Node 20 workers do not inherit the
 * parent's --import hooks.
 */
export function startWorkerThread(name: string, base: string, workerData?: unknown): Worker {
  for (const rel of [`./${name}.ts`, `./${name}.js`, `../${name}.js`]) {
    const url = new URL(rel, base)
    if (!existsSync(fileURLToPath(url))) continue
    return url.pathname.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}) })`, {
          eval: true,
          workerData,
        })
      : new Worker(url, { workerData })
  }
  throw new Error(`${name} not found beside the code`)
}
