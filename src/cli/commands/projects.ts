import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveProject, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean; slug?: string }

/** `coffer projects create NAME`: a project with development, staging and production. */
export async function projectsCreate(name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const r = await client.createProject(ws, { name, ...(opts.slug ? { slug: opts.slug } : {}) })
  if (opts.json) return printJson(r)
  process.stdout.write(`${r.project.slug}\n`)
  info(`Created project ${r.project.name} (${r.project.slug}) with environments ${r.environments.map((e) => e.slug).join(', ')}.`)
}

/** `coffer projects list`. */
export async function projectsList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const projects = await client.listProjects(await resolveWorkspace(client, opts))
  if (opts.json) return printJson(projects)
  if (!projects.length) return info('No projects yet: coffer projects create NAME')
  printTable(
    ['SLUG', 'NAME', 'ID'],
    projects.map((p) => [p.slug, p.name, p.id]),
  )
}

/** `coffer envs list`: environments of the project. */
export async function envsList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const envs = await client.listEnvironments(await resolveWorkspace(client, opts), resolveProject(opts))
  if (opts.json) return printJson(envs)
  printTable(
    ['SLUG', 'NAME', 'ID', 'SEALED'],
    envs.map((e) => [e.slug, e.name, e.id, e.sealed ? 'sealed' : '-']),
  )
}

/** `coffer envs create NAME`: a new environment with its own data key. */
export async function envsCreate(name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const env = await client.createEnvironment(await resolveWorkspace(client, opts), resolveProject(opts), {
    name,
    ...(opts.slug ? { slug: opts.slug } : {}),
  })
  if (opts.json) return printJson(env)
  process.stdout.write(`${env.slug}\n`)
  info(`Created environment ${env.name} (${env.slug}).`)
}

/** `coffer setup --project P --env E`: links this directory (writes .coffer.json, no secret). */
export async function setup(opts: Opts): Promise<void> {
  if (!opts.project || !opts.env) throw new ExitError('Pass --project and --env.')
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const workspace = await client.workspace(ws)
  const { project, environments } = await client.project(workspace.slug, opts.project)
  const env = environments.find((e) => e.slug === opts.env || e.id === opts.env)
  if (!env)
    throw new ExitError(`Project ${project.slug} has no environment ${opts.env} (it has ${environments.map((e) => e.slug).join(', ')}).`)
  const { writeProjectConfig } = await import('../project-config.js')
  const path = writeProjectConfig(process.cwd(), { workspace: workspace.slug, project: project.slug, environment: env.slug })
  if (opts.json) return printJson({ path, workspace: workspace.slug, project: project.slug, environment: env.slug })
  info(`Linked ${process.cwd()} to ${workspace.slug}/${project.slug}/${env.slug} (${path}).`)
}

/** `coffer projects rename PROJECT NAME`: a new display name (the slug stays, so links and .coffer.json keep working). */
export async function projectsRename(project: string, name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const p = await client.renameProject(await resolveWorkspace(client, opts), project, name)
  if (opts.json) return printJson(p)
  info(`Renamed project ${p.slug} to ${p.name} (the slug stays ${p.slug}).`)
}

/**
 * `coffer projects delete PROJECT --yes [--force]` (Owner/Admin): every environment's data key
 * is destroyed, then its rows removed. Without --yes it asks for the slug on a terminal and
 * refuses elsewhere; --force is needed while it still holds secrets.
 */
export async function projectsDelete(project: string, opts: Opts & { yes?: boolean; force?: boolean }): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const { project: p, environments } = await client.project(ws, project)
  await confirmDeletion(
    opts,
    `project ${p.slug}`,
    p.slug,
    `Deleting project ${p.slug} destroys the data keys of ${environments.map((e) => e.slug).join(', ') || 'its environments'}; its secrets can never be read again.`,
  )
  const r = await client.deleteProject(ws, p.id, { confirm: p.slug, ...(opts.force ? { force: true } : {}) })
  if (opts.json) return printJson(r)
  const secrets = r.environments.reduce((n, e) => n + e.secrets, 0)
  info(`Deleted project ${r.project.slug}: ${r.environments.length} environments and their data keys, ${secrets} secrets.`)
}

/** `coffer envs rename ENV NAME [--project P]`: a new display name (the slug stays). */
export async function envsRename(env: string, name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const e = await client.renameEnvironment({ workspace: ws, project: resolveProject(opts), environment: env }, name)
  if (opts.json) return printJson(e)
  info(`Renamed environment ${e.slug} to ${e.name} (the slug stays ${e.slug}).`)
}

/**
 * `coffer envs delete ENV --yes [--force] [--project P]` (project admin): its data key is
 * destroyed, then its rows removed. Confirmation as for `projects delete`.
 */
export async function envsDelete(env: string, opts: Opts & { yes?: boolean; force?: boolean }): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const project = resolveProject(opts)
  const e = (await client.listEnvironments(ws, project)).find((x) => x.slug === env || x.id === env)
  // An environment this caller cannot see answers like one that does not exist (the server's 404).
  const scope = { workspace: ws, project, environment: e?.id ?? env }
  const slug = e?.slug ?? env
  await confirmDeletion(
    opts,
    `environment ${slug}`,
    slug,
    `Deleting environment ${slug} destroys its data key; its secrets can never be read again.`,
  )
  const r = await client.deleteEnvironment(scope, { confirm: slug, ...(opts.force ? { force: true } : {}) })
  if (opts.json) return printJson(r)
  info(
    `Deleted environment ${r.environment.slug}: its data key (${r.environment.dataKey.versions.length} versions) and ${r.environment.secrets} secrets.`,
  )
}

/** --yes, or the slug typed on a terminal; anything else refuses with ERR_CONFIRMATION_REQUIRED. */
async function confirmDeletion(opts: { yes?: boolean }, what: string, slug: string, warning: string): Promise<void> {
  if (opts.yes) return
  if (!process.stdin.isTTY)
    throw new ExitError(`Deleting ${what} cannot be undone: pass --yes to confirm.`, { code: 'ERR_CONFIRMATION_REQUIRED' })
  const { createInterface } = await import('node:readline/promises')
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    const typed = (await rl.question(`${warning}\nType ${slug} to confirm: `)).trim()
    if (typed !== slug) throw new ExitError(`Not deleted: you typed "${typed}", not ${slug}.`, { code: 'ERR_CONFIRMATION_REQUIRED' })
  } finally {
    rl.close()
  }
}
