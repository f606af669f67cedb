import type { QueryClient } from '@tanstack/react-query'
import { keys } from '../../api.js'

/** After a write in an environment: its list, its deleted secrets, the histories and the project's matrix are stale. */
export async function invalidateEnvironment(qc: QueryClient, w: string, p: string, e: string): Promise<void> {
  await Promise.all([
    qc.invalidateQueries({ queryKey: keys.secrets(w, p, e) }),
    qc.invalidateQueries({ queryKey: keys.deletedSecrets(w, p, e) }),
    qc.invalidateQueries({ queryKey: ['history', w, p, e] }),
    qc.invalidateQueries({ queryKey: keys.matrix(w, p) }),
  ])
}

/** After a project or environment changed shape (created, renamed, deleted, restricted, sealed). */
export async function invalidateProject(qc: QueryClient, w: string, p: string): Promise<void> {
  await Promise.all([
    qc.invalidateQueries({ queryKey: keys.project(w, p) }),
    qc.invalidateQueries({ queryKey: keys.projects(w) }),
    qc.invalidateQueries({ queryKey: keys.matrix(w, p) }),
  ])
}

/** "1 secret", "3 secrets". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`
}
