import type { FastifyBaseLogger } from 'fastify'
import type { ChangeRequestView } from '../access/change-requests.js'
import type { AppContext } from '../context.js'

/**
 * Tells the people who may approve a new change request about it, as break-glass requests
 * do: by mail when SMTP is configured (COFFER_SMTP_URL), else a line in the server log; it is
 * in `coffer changes list` and the dashboard's Change requests either way. Keys only, never a
 * value.
 */
export function notifyChangeApprovers(
  app: Pick<AppContext, 'mailer'>,
  ws: { slug: string },
  r: ChangeRequestView,
  approvers: Array<{ id: string; email: string }>,
): (log: FastifyBaseLogger) => Promise<void> {
  return async (log) => {
    const scope = `${r.project.slug}/${r.environment.slug}`
    if (!app.mailer.enabled) {
      log.info(
        { changeRequest: r.id, approvers: approvers.map((a) => a.id) },
        'change request: no mailer configured; approvers see it in `coffer changes list`',
      )
      return
    }
    const text = [
      `${r.requester.email ?? 'A token'} proposes a change to the protected environment ${scope} in workspace ${ws.slug}:`,
      ...r.changes.map((c) => `  ${c.op} ${c.key}${c.toVersion ? ` (to version ${c.toVersion})` : ''}`),
      '',
      `Review:  coffer changes show ${r.id} --workspace ${ws.slug}`,
      `Approve: coffer changes approve ${r.id} --workspace ${ws.slug}`,
      `Reject:  coffer changes reject ${r.id} --workspace ${ws.slug}`,
      `It needs ${r.approvalsRequired} approvals from Owners or Admins other than the requester, by ${r.expiresAt}.`,
    ].join('\n')
    // @NOTE not awaited: a slow mail server must not hold the request; a failure is logged.
    for (const a of approvers) {
      void app.mailer
        .send({ to: a.email, subject: `[Coffer] Change request for ${scope}`, text })
        .catch((err: unknown) =>
          log.warn(
            { changeRequest: r.id, approver: a.id, err: { message: (err as Error).message } },
            'change request notification mail failed',
          ),
        )
    }
  }
}
