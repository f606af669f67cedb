// A throw-away PostgreSQL vault for benchmarks: a database of its own, an application role
// without BYPASSRLS (as a deployment runs), `coffer init`, and nodes started on it.
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import pg from 'pg'
import { COFFER_BIN, cleanEnv, makeTempDir, removeTempDir, spawnServer, type CofferServer } from './harness.js'

export interface PostgresVault {
  /** The database's name and the application role's. */
  readonly name: string
  readonly role: string
  readonly token: string
  readonly workspace: string
  /** Starts node `i` (its own data dir) with extra node flags and settings. */
  startNode(i: number, nodeFlags?: string[], settings?: Record<string, string>): Promise<CofferServer>
  /** Drops the database and the role, and removes the temp dirs. */
  drop(): Promise<void>
}

export async function createPostgresVault(adminUrl: string): Promise<PostgresVault> {
  const name = `coffer_bench_${randomBytes(5).toString('hex')}`
  const role = `${name}_app`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS`)
  const ownerUrl = new URL(adminUrl)
  ownerUrl.pathname = `/${name}`
  const appUrl = new URL(ownerUrl)
  appUrl.username = role
  appUrl.password = ''
  const work = makeTempDir('coffer-bench-pg-')
  const drop = async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.query(`DROP ROLE IF EXISTS ${role}`)
    await admin.end()
    removeTempDir(work)
  }
  try {
    const env = cleanEnv({
      DATABASE_URL: appUrl.toString(),
      COFFER_MIGRATION_DATABASE_URL: ownerUrl.toString(),
      COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
      COFFER_LOG_LEVEL: 'warn',
      COFFER_RATE_TOKEN_PER_MINUTE: '0',
      COFFER_RATE_TOKEN_PER_MONTH: '0',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
    })
    const init = spawnSync(
      process.execPath,
      [COFFER_BIN, 'init', '--data-dir', join(work, 'init'), '--email', 'bench@localhost', '--json'],
      {
        env,
        encoding: 'utf8',
        timeout: 60_000,
      },
    )
    if (init.status !== 0) throw new Error(`coffer init failed: ${init.stderr}`)
    const { token, workspace } = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    return {
      name,
      role,
      token,
      workspace: workspace.slug,
      async startNode(i, nodeFlags = [], settings = {}) {
        const dataDir = join(work, `node${i}`)
        const s = await spawnServer([...nodeFlags, COFFER_BIN, 'server', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], {
          env: { ...env, ...settings },
          ready: /listening on (http:\/\/\S+)/,
          name: `node ${i + 1}`,
          timeoutMs: 60_000,
        })
        return { ...s, token, workspace: workspace.slug, dataDir }
      },
      drop,
    }
  } catch (err) {
    await drop()
    throw err
  }
}
