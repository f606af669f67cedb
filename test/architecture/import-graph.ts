import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

// Reads the import graph of the TypeScript sources as text: every static `import … from`,
// `export … from`, side-effect `import '…'` and dynamic `import('…')` with a literal
// specifier. Good enough for code that follows the conventions (ESM, explicit `.js`).

/** One import of one file. `to` is a repository-relative path for relative imports, else the package name. */
export interface ImportEdge {
  readonly from: string
  readonly to: string
  /** `import type …` / `export type …`: erased at run time. */
  readonly typeOnly: boolean
  /** `import('…')`: loaded only when that code runs. */
  readonly dynamic: boolean
  readonly line: number
}

const STATIC = /^\s*(import|export)\s+(type\s+)?(?:[\s\S]*?\s+from\s+)?['"]([^'"]+)['"]/gm
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g

function lineOf(text: string, index: number): number {
  let n = 1
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) n++
  return n
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`, `node:fs` → `node:fs`). */
export function packageOf(spec: string): string {
  if (spec.startsWith('node:')) return spec
  const parts = spec.split('/')
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

function resolveSpec(root: string, from: string, spec: string): string {
  if (!spec.startsWith('.')) return packageOf(spec)
  const abs = resolve(root, dirname(from), spec)
  return relative(root, abs).replace(/\.js$/, '.ts').split('\\').join('/')
}

/** The edges of one file's text. */
export function importsOf(root: string, file: string, text: string): ImportEdge[] {
  const out: ImportEdge[] = []
  // Comments could hold example imports: blank them, keeping offsets.
  const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (c) => c.replace(/[^\n]/g, ' '))
  for (const m of code.matchAll(STATIC)) {
    // `export { x }` / `export const` without `from` are not imports.
    if (m[1] === 'export' && !/\bfrom\s+['"]/.test(m[0])) continue
    const clause = m[0]
    const typeOnly = m[2] !== undefined || /^\s*(import|export)\s*\{\s*(type\s+[\w$]+\s*(as\s+[\w$]+\s*)?,?\s*)+\}\s*from/.test(clause)
    out.push({ from: file, to: resolveSpec(root, file, m[3]!), typeOnly, dynamic: false, line: lineOf(code, m.index) })
  }
  for (const m of code.matchAll(DYNAMIC)) {
    out.push({ from: file, to: resolveSpec(root, file, m[1]!), typeOnly: false, dynamic: true, line: lineOf(code, m.index) })
  }
  return out
}

/** Every `.ts` file under `dir`, repository-relative. */
export function sourceFiles(root: string, dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(join(root, d)).sort()) {
      const p = `${d}/${name}`
      if (statSync(join(root, p)).isDirectory()) walk(p)
      else if (name.endsWith('.ts')) out.push(p)
    }
  }
  walk(dir)
  return out
}

/** The import graph of every `.ts` file under `dir`. */
export function readGraph(root: string, dir: string): { files: string[]; edges: ImportEdge[]; text: Map<string, string> } {
  const files = sourceFiles(root, dir)
  const text = new Map(files.map((f) => [f, readFileSync(join(root, f), 'utf8')]))
  return { files, edges: files.flatMap((f) => importsOf(root, f, text.get(f)!)), text }
}

/** The strongly connected components with more than one node (Tarjan), each sorted. */
export function cycles(nodes: readonly string[], edges: ReadonlyArray<readonly [string, string]>): string[][] {
  const next = new Map<string, string[]>(nodes.map((n) => [n, []]))
  for (const [a, b] of edges) if (a !== b && next.has(a) && next.has(b)) next.get(a)!.push(b)
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const on = new Set<string>()
  const out: string[][] = []
  const visit = (v: string) => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of next.get(v)!) {
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!))
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = []
      let w: string
      do {
        w = stack.pop()!
        on.delete(w)
        comp.push(w)
      } while (w !== v)
      if (comp.length > 1) out.push(comp.sort())
    }
  }
  for (const n of nodes) if (!idx.has(n)) visit(n)
  return out
}
