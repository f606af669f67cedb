import { z } from 'zod'
import { acceptInvitation, invitationWorkspace } from '../../access/invitations.js'
import { ROLES } from '../../api/roles.js'
import { workspaceView } from '../../api/workspaces.js'
import { defineAuthRoute, type AnyAuthRoute } from '../auth-route.js'
import { acceptanceEvents } from './invitation-routes.js'

// The invite page's Accept button (src/server/pages/invite-pages.ts). A form cannot post JSON
// with an X-CSRF-Token header, so it posts here, to the account pipeline, which takes HTML
// forms and their _csrf field. Same rules and the same core function as
// POST /v1/invitations/accept; the events go to the invited workspace's log only.

/** Where the page goes after accepting: it names the workspace (to its new member only). */
export function acceptedPage(slug: string): string {
  return `/invite/accepted?workspace=${encodeURIComponent(slug)}`
}

const acceptForm = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/account/invitations/accept',
  // The same rule as POST /v1/invitations/accept: the invitation's own token is the authority.
  acceptsToken: true,
  tag: 'members',
  summary: 'Accept an invitation from the invite page (browser form; same rules as POST /v1/invitations/accept)',
  action: 'invitation.accept',
  mode: 'write',
  body: z.strictObject({ token: z.string().min(1).max(200) }),
  response: z.object({ workspace: workspaceView, role: z.enum(ROLES) }),
  // @NOTE failures go back to the page without the token: the page explains the code alone.
  form: { success: (a) => acceptedPage(a.workspace.slug), failure: '/invite' },
  async prepare({ db, body, now }) {
    // The token places the request (unusable ones fail here, before any transaction).
    return invitationWorkspace(db, body.token, now)
  },
  auditWorkspace: (workspace) => workspace.id,
  async handler({ db, person, body, prepared, now }) {
    const p = person!
    const r = await acceptInvitation(db, prepared.id, body.token, { userId: p.userId, email: p.email }, now)
    return { body: { workspace: prepared, role: r.role }, audit: acceptanceEvents(r, p.userId) }
  },
})

/** The invite page's form route. */
export const invitationFormRoutes: AnyAuthRoute[] = [acceptForm]
