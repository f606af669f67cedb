// The CloudFormation template a workspace's admins deploy in their AWS account: one IAM role,
// read-only (AWS's managed ReadOnlyAccess: Describe*, List*, Get*), that trusts Coffer's principal only with the workspace's
// external ID. JSON, which CloudFormation reads as it reads YAML. Revoking Coffer's access is
// deleting the stack.

/** Builds the template; `principalArn` absent leaves the parameter for the deployer to fill. */
export function cloudFormationTemplate(input: { externalId: string; principalArn?: string; workspace: string }): Record<string, unknown> {
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: `Read-only IAM role that Coffer (workspace ${input.workspace}) may assume with its external ID. Delete the stack to revoke Coffer's access.`,
    Parameters: {
      CofferPrincipalArn: {
        Type: 'String',
        Description: "Coffer's AWS principal (the IAM role or user its server calls STS as); ask your Coffer operator",
        AllowedPattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:(root|(user|role)/.+)$',
        ...(input.principalArn ? { Default: input.principalArn } : {}),
      },
      ExternalId: {
        Type: 'String',
        Description: "The workspace's external ID (coffer aws external-id); update it here after a rotation",
        Default: input.externalId,
        MinLength: 2,
        MaxLength: 1224,
      },
      RoleName: {
        Type: 'String',
        Description: 'Name of the role to create',
        Default: 'coffer-read-only',
        AllowedPattern: '^[\\w+=,.@-]{1,64}$',
      },
    },
    Resources: {
      CofferRole: {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: { Ref: 'RoleName' },
          Description: 'Assumed by Coffer with an external ID; read-only',
          MaxSessionDuration: 3600,
          AssumeRolePolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Principal: { AWS: { Ref: 'CofferPrincipalArn' } },
                Action: 'sts:AssumeRole',
                Condition: { StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } } },
              },
            ],
          },
          // AWS's managed ReadOnlyAccess: the Describe*, List* and Get* actions of every service
          // (IAM takes no wildcard in a service prefix, so an inline policy could not say it shorter).
          ManagedPolicyArns: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/ReadOnlyAccess']] }],
        },
      },
    },
    Outputs: {
      RoleArn: {
        Description: 'Register it in Coffer: coffer aws create NAME --role-arn <this>',
        Value: { 'Fn::GetAtt': ['CofferRole', 'Arn'] },
      },
    },
  }
}
