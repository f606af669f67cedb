import { createRootRoute, createRoute, createRouter, lazyRouteComponent, Outlet } from '@tanstack/react-router'
import { MatrixScreen } from './screens/env/matrix.js'
import { EnvironmentScreen } from './screens/environment.js'
import { Home } from './screens/home.js'
import { NotFound } from './screens/not-found.js'
import { ProjectScreen } from './screens/project.js'
import { ProjectsScreen } from './screens/projects.js'
import { Shell } from './screens/shell.js'
import { MembersScreen } from './screens/team/members.js'
import { TokensScreen } from './screens/team/tokens.js'

// The dashboard's URLs. Every path the app does not know shows "not found" (the server
// sends the app for any unknown path that is not an API or file path).
//   /                                          → the person's first workspace
//   /w/:workspace                              → projects
//   /w/:workspace/projects/:project            → a project's environments
//   /w/:workspace/projects/:project/:environment → the secrets of one environment
//   /w/:workspace/compare/:project             → the project's environments compared (keys × environments)
//   /w/:workspace/keys, /audit, /break-glass, /settings → the operations screens (loaded on first visit)
//   /w/:workspace/changes                      → change requests of protected environments (screens/ops/changes)
//   /w/:workspace/members                      → members, invitations, project roles (screens/team)
//   /w/:workspace/tokens                       → personal tokens, service tokens, machine identities (screens/team)
//   /w/:workspace/webhooks                     → webhook endpoints and their delivery logs (screens/webhooks)
//   /w/:workspace/projects/:project/:environment/db-roles → an environment's dynamic database roles (screens/env/db-roles)

const rootRoute = createRootRoute({ component: Outlet, notFoundComponent: () => <NotFound standalone /> })

const homeRoute = createRoute({ getParentRoute: () => rootRoute, path: '/', component: Home })

const workspaceRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/w/$workspace',
  component: function WorkspaceRoute() {
    const { workspace } = workspaceRoute.useParams()
    return <Shell workspace={workspace} />
  },
  notFoundComponent: () => <NotFound />,
})

const projectsRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: '/',
  component: function ProjectsRoute() {
    const { workspace } = projectsRoute.useParams()
    return <ProjectsScreen workspace={workspace} />
  },
})

const projectRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'projects/$project',
  component: function ProjectRoute() {
    const { workspace, project } = projectRoute.useParams()
    return <ProjectScreen workspace={workspace} project={project} />
  },
})

const environmentRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'projects/$project/$environment',
  component: function EnvironmentRoute() {
    const { workspace, project, environment } = environmentRoute.useParams()
    return <EnvironmentScreen workspace={workspace} project={project} environment={environment} />
  },
})

// Outside projects/…: an environment's slug could be "compare".
const matrixRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'compare/$project',
  component: function MatrixRoute() {
    const { workspace, project } = matrixRoute.useParams()
    return <MatrixScreen workspace={workspace} project={project} />
  },
})

// Operations screens: each its own chunk, fetched the first time it is opened.
const keysRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'keys',
  component: lazyRouteComponent(() => import('./screens/ops/keys.js'), 'KeysRoute'),
})
const auditRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'audit',
  component: lazyRouteComponent(() => import('./screens/ops/audit.js'), 'AuditRoute'),
})
const breakGlassRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'break-glass',
  component: lazyRouteComponent(() => import('./screens/ops/break-glass.js'), 'BreakGlassRoute'),
})
const settingsRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'settings',
  component: lazyRouteComponent(() => import('./screens/ops/settings.js'), 'SettingsRoute'),
})
const changesRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'changes',
  component: lazyRouteComponent(() => import('./screens/ops/changes.js'), 'ChangesRoute'),
})
const connectionsRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'connections',
  component: lazyRouteComponent(() => import('./screens/ops/connections.js'), 'ConnectionsRoute'),
})
const opsRoutes = [keysRoute, auditRoute, breakGlassRoute, settingsRoute, changesRoute, connectionsRoute]
// Team screens (screens/team).
const membersRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'members',
  component: function MembersRoute() {
    const { workspace } = membersRoute.useParams()
    return <MembersScreen workspace={workspace} />
  },
})

const tokensRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'tokens',
  component: function TokensRoute() {
    const { workspace } = tokensRoute.useParams()
    return <TokensScreen workspace={workspace} />
  },
})

// Integrations, each its own chunk: webhooks (Owners, Admins) and an environment's database roles.
const webhooksRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'webhooks',
  component: lazyRouteComponent(() => import('./screens/webhooks/webhooks.js'), 'WebhooksRoute'),
})
const dbRolesRoute = createRoute({
  getParentRoute: () => workspaceRoute,
  path: 'projects/$project/$environment/db-roles',
  component: lazyRouteComponent(() => import('./screens/env/db-roles.js'), 'DbRolesRoute'),
})
const integrationRoutes = [webhooksRoute, dbRolesRoute]

export const router = createRouter({
  routeTree: rootRoute.addChildren([
    homeRoute,
    workspaceRoute.addChildren([
      projectsRoute,
      projectRoute,
      environmentRoute,
      matrixRoute,
      ...opsRoutes,
      membersRoute,
      tokensRoute,
      ...integrationRoutes,
    ]),
  ]),
  defaultPreload: 'intent',
  scrollRestoration: true,
})

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router
  }
}
