// writ's MCP gateway for clients built on the official MCP TypeScript SDK
// (@modelcontextprotocol/sdk, an optional peer dependency): every request
// to /mcp/<server> carries the task token, renewed as its source renews it,
// and a DPoP proof of its own when the token is DPoP-bound.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';

import type { Writ } from './client.js';
import { TokenError } from './errors.js';

/** The gateway's URL for MCP server `server`. */
export function mcpURL(writ: Writ, server: string): string {
  return `${writ.url}/mcp/${encodeURIComponent(server)}`;
}

/**
 * A Streamable HTTP transport to writ's gateway for `server`, whose every
 * request is authenticated by the client's task token (writ.fetch).
 */
export function mcpTransport(writ: Writ, server: string): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(new URL(mcpURL(writ, server)), { fetch: writ.fetch });
}

/** An MCP client connected to writ's gateway for `server`. */
export async function connectMcp(writ: Writ, server: string, info: { name: string; version: string } = { name: 'writ-agent', version: '1' }): Promise<Client> {
  const client = new Client(info);
  await client.connect(mcpTransport(writ, server));
  return client;
}

/**
 * An OAuthClientProvider that hands the MCP SDK the task token, for MCP
 * clients that take a provider rather than a fetch (LangChain's
 * MultiServerMCPClient, for one). Bearer tokens only: a DPoP-bound token
 * needs a proof per request, which mcpTransport's fetch makes. writ issues
 * tokens by exchange, not by an authorization redirect, so a refused token
 * is an error to act on (renew the token, or stop: the task ended).
 */
export function mcpAuthProvider(writ: Writ): OAuthClientProvider {
  const refuse = (): never => {
    throw new TokenError('writ refused the task token at the MCP gateway', {
      status: 401,
      code: 'invalid_token',
      hint: 'renew it (writ exec keeps WRIT_TOKEN_FILE renewed), or stop: the task may have ended',
    });
  };
  return {
    get redirectUrl() {
      return undefined;
    },
    get clientMetadata(): OAuthClientMetadata {
      return { client_name: 'writ task token', redirect_uris: [] };
    },
    clientInformation: () => undefined,
    async tokens(): Promise<OAuthTokens> {
      const tok = await writ.token();
      if (tok.dpop) {
        throw new TokenError('the task token is DPoP-bound: an auth provider cannot sign a proof per request', {
          hint: 'connect with mcpTransport(writ, server) or connectMcp, whose fetch does',
        });
      }
      return { access_token: tok.token, token_type: 'Bearer' };
    },
    saveTokens: () => undefined,
    redirectToAuthorization: refuse,
    saveCodeVerifier: () => undefined,
    codeVerifier: refuse,
  };
}
