// lifecycle runs a token's lifecycle through openapi-fetch with the types
// openapi-typescript generates from the admin API's document (schema.d.mts,
// made at test time), as a TypeScript user of the API would write it:
// create, list, get, update (clearing the rate limit with null),
// regenerate, revoke and delete, then a 401 from the token middleware read
// as a problem. TestTypeScriptClient compiles it with tsc and runs it with
// node.
//
// It reads the API's URL, the org and the manager's token from ADMIN_URL,
// ADMIN_ORG and ADMIN_TOKEN, prints one line per step (never a key) and
// exits 1 with the reason on the first surprise.

import createClient from "openapi-fetch";
import type { components, paths } from "./schema.mjs";

// The few Node globals used here, so that no @types/node is needed.
declare const process: { env: Record<string, string | undefined>; exitCode?: number };

type Problem = components["schemas"]["Problem"];

function fail(step: string, status: number, body: unknown): never {
  throw new Error(`${step}: status ${status}: ${JSON.stringify(body)}`);
}

async function run(baseUrl: string, org: string, token: string): Promise<void> {
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  const doc = await client.GET("/openapi.json");
  if (!doc.data) fail("openapi.json", doc.response.status, doc.error);
  const version: string = doc.data.openapi; // typed: the document is an object with members
  console.log("openapi.json", doc.response.status, version);

  const created = await client.POST("/orgs/{org}/apitokens", {
    params: { path: { org } },
    body: { name: "ci", roles: ["reader"], rate_limit: { rate: 1 / 60, burst: 5 } },
  });
  if (!created.data) fail("create", created.response.status, created.error);
  const { id, key } = created.data;
  if (!key || created.data.rate_limit?.rate !== 1 / 60) fail("create", created.response.status, created.data.rate_limit);
  console.log("create", created.response.status, created.data.status, created.data.roles?.join(",") === "reader");

  const list = await client.GET("/orgs/{org}/apitokens", { params: { path: { org }, query: { limit: 10 } } });
  if (!list.data) fail("list", list.response.status, list.error);
  console.log("list", list.response.status, list.data.tokens.some((t) => t.id === id));

  const got = await client.GET("/orgs/{org}/apitokens/{id}", { params: { path: { org, id } } });
  const etag = got.response.headers.get("ETag");
  if (!got.data || !etag) fail("get", got.response.status, got.error);
  console.log("get", got.response.status, got.data.name);

  // A merge patch: a new name, and null for rate_limit (back to the
  // policy's limit).
  const upd = await client.PATCH("/orgs/{org}/apitokens/{id}", {
    params: { path: { org, id }, header: { "If-Match": etag } },
    body: { name: "ci-renamed", rate_limit: null },
  });
  const etag2 = upd.response.headers.get("ETag");
  if (!upd.data || !etag2) fail("update", upd.response.status, upd.error);
  console.log("update", upd.response.status, upd.data.name, upd.data.rate_limit === undefined);

  const regen = await client.POST("/orgs/{org}/apitokens/{id}/regenerate", {
    params: { path: { org, id }, header: { "If-Match": etag2 } },
    body: {},
  });
  if (!regen.data) fail("regenerate", regen.response.status, regen.error);
  console.log("regenerate", regen.response.status, regen.data.key !== "" && regen.data.key !== key);

  const rev = await client.POST("/orgs/{org}/apitokens/{id}/revoke", { params: { path: { org, id } }, body: {} });
  if (!rev.data) fail("revoke", rev.response.status, rev.error);
  console.log("revoke", rev.response.status, rev.data.status);

  const del = await client.DELETE("/orgs/{org}/apitokens/{id}", { params: { path: { org, id } } });
  if (del.response.status !== 204) fail("delete", del.response.status, del.error);
  console.log("delete", del.response.status);

  const gone = await client.GET("/orgs/{org}/apitokens/{id}", { params: { path: { org, id } } });
  if (!gone.error) fail("get after delete", gone.response.status, gone.data);
  const notFound: Problem["code"] = gone.error.code;
  console.log("get after delete", gone.response.status, notFound);

  // The token middleware in front of the API answers a forged token
  // itself, with a problem of the same shape.
  const forged = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${"x".repeat(40)}` } });
  const denied = await forged.GET("/orgs/{org}/apitokens", { params: { path: { org } } });
  if (!denied.error) fail("forged token", denied.response.status, denied.data);
  const code: Problem["code"] = denied.error.code;
  console.log("forged token", denied.response.status, code, denied.response.headers.get("WWW-Authenticate"));
}

const { ADMIN_URL, ADMIN_ORG, ADMIN_TOKEN } = process.env;
try {
  if (!ADMIN_URL || !ADMIN_ORG || !ADMIN_TOKEN) throw new Error("set ADMIN_URL, ADMIN_ORG and ADMIN_TOKEN");
  await run(ADMIN_URL, ADMIN_ORG, ADMIN_TOKEN);
} catch (err) {
  console.error("lifecycle:", err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
