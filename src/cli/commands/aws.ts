import { writeFileSync } from 'node:fs'
import type { AwsRoleView } from '../../api/aws.js'
import { awsVariables } from '../aws-variables.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveScope, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }

function duration(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 900 || n > 3600) throw new ExitError(`${flag} must be a whole number of seconds from 900 to 3600.`)
  return n
}

/** `coffer aws external-id [--rotate]`: the workspace's external ID (Owners and Admins), or a new one. */
export async function awsExternalId(opts: Opts & { rotate?: boolean }): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const r = opts.rotate ? await client.awsExternalIdRotate(ws) : await client.awsExternalId(ws)
  if (opts.json) return printJson(r)
  process.stdout.write(`${r.externalId}\n`)
  if (opts.rotate)
    info(
      `External ID rotated (version ${r.version}). Roles whose stacks hold the old one are refused from now on: update each stack's ExternalId parameter.`,
    )
  else if (!r.principalArn) info('The server names no Coffer principal (COFFER_AWS_PRINCIPAL_ARN): ask its operator for it.')
  else info(`Coffer's principal: ${r.principalArn}`)
}

/** `coffer aws template [--out FILE]`: the CloudFormation template (JSON) for a read-only role that requires the external ID. */
export async function awsTemplate(opts: Opts & { out?: string }): Promise<void> {
  const client = await connect(opts)
  const template = await client.awsTemplate(await resolveWorkspace(client, opts))
  const text = `${JSON.stringify(template, null, 2)}\n`
  if (opts.out === undefined) {
    process.stdout.write(text)
    return
  }
  try {
    // A new file only: never over something already there.
    writeFileSync(opts.out, text, { flag: 'wx', mode: 0o644 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ExitError(
      code === 'EEXIST' ? `${opts.out} already exists; choose another path or remove it.` : `Could not write ${opts.out} (${code}).`,
    )
  }
  info(
    `Saved ${opts.out}. Deploy it: aws cloudformation deploy --template-file ${opts.out} --stack-name coffer --capabilities CAPABILITY_NAMED_IAM`,
  )
  info('Then register the role: coffer aws create NAME --role-arn <the stack’s RoleArn output>')
}

/** `coffer aws create NAME --role-arn ARN [--region R] [--duration S]` (project admins). */
export async function awsCreate(name: string, opts: Opts & { roleArn?: string; region?: string; duration?: string }): Promise<void> {
  if (!opts.roleArn) throw new ExitError('Give the role with --role-arn arn:aws:iam::ACCOUNT:role/NAME (the stack’s RoleArn output).')
  const max = duration(opts.duration, '--duration')
  const client = await connect(opts)
  const role = await client.awsRoleCreate(await resolveScope(client, opts), {
    name,
    roleArn: opts.roleArn,
    ...(opts.region !== undefined ? { region: opts.region } : {}),
    ...(max !== undefined ? { maxDurationSeconds: max } : {}),
  })
  if (opts.json) return printJson(role)
  info(`AWS role ${role.name} → ${role.roleArn}: sessions of at most ${role.maxDurationSeconds} s.`)
  info(`Use it: coffer run --aws ${role.name} -- aws sts get-caller-identity`)
}

/** `coffer aws list`. */
export async function awsList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const roles = await client.awsRoleList(await resolveScope(client, opts))
  if (opts.json) return printJson(roles)
  if (!roles.length) return info('No AWS roles in this environment. Add one: coffer aws create NAME --role-arn ARN')
  printTable(
    ['NAME', 'ROLE ARN', 'REGION', 'MAX SESSION'],
    roles.map((r: AwsRoleView) => [r.name, r.roleArn, r.region ?? '-', `${r.maxDurationSeconds}s`]),
  )
}

/** `coffer aws delete NAME`: Coffer forgets the role (sessions already issued run out within the hour). */
export async function awsDelete(name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const role = await client.awsRoleDelete(await resolveScope(client, opts), name)
  if (opts.json) return printJson(role)
  info(`Deleted AWS role ${role.name}. Sessions already issued end at their expiry; delete the stack in AWS to end them now.`)
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`
}

/**
 * `coffer aws creds NAME [--duration S] [--json]`: an STS session, printed once — shell exports
 * (`eval "$(coffer aws creds NAME)"`), or with --json the AWS CLI's `credential_process` shape.
 */
export async function awsCreds(name: string, opts: Opts & { duration?: string }): Promise<void> {
  const client = await connect(opts)
  const r = await client.awsCredentials(await resolveScope(client, opts), name, duration(opts.duration, '--duration'))
  const c = r.credentials
  if (opts.json)
    return printJson({
      Version: 1,
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      SessionToken: c.sessionToken,
      Expiration: c.expiresAt,
    })
  const vars = awsVariables(c)
  process.stdout.write(
    `${Object.entries(vars)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join('\n')}\n`,
  )
  info(`Session ${c.sessionName} of ${r.role.roleArn}, valid until ${c.expiresAt}.`)
}
