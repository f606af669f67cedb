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
