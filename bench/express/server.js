// Reference server for bench/http_login.py and bench/http_refresh.py: the seed's Express
// sketch. POST /login compares a fixed username/password in plain text (no hashing) and
// signs an HS256 access token (15 min) plus a refresh token that is itself a JWT signed
// with a second secret (7 days). POST /refresh verifies that refresh JWT statelessly and
// signs a new pair: no rotation state, no reuse detection, no store, no audit.
//
//   node server.js PORT            (listens on 127.0.0.1)
//
// BENCH_USER / BENCH_PASSWORD override the account (defaults below).
//
// Secrets are KeyObjects made once at start (SECRET_MODE=keyobject, the default): with a
// string or Buffer secret, jsonwebtoken 9 first tries to parse it as a PEM key on every
// sign and verify (createPrivateKey / createPublicKey) and only then falls back to an HMAC
// key, which costs far more than the HMAC itself (auth0/node-jsonwebtoken#966, #944).
// SECRET_MODE=string passes plain strings, as a typical sketch does, to measure that path.
"use strict";

const crypto = require("node:crypto");
const express = require("express");
const jwt = require("jsonwebtoken");

const port = Number.parseInt(process.argv[2] || "3000", 10);
const USER = process.env.BENCH_USER || "bench";
const PASSWORD = process.env.BENCH_PASSWORD || "bench-pass-9876";
const STRING_SECRETS = process.env.SECRET_MODE === "string";

function secret() {
  const text = crypto.randomBytes(48).toString("base64url"); // 64 characters
  return STRING_SECRETS ? text : crypto.createSecretKey(Buffer.from(text));
}

const ACCESS_SECRET = secret();
const REFRESH_SECRET = secret();

function pair(sub) {
  const access_token = jwt.sign({ sub }, ACCESS_SECRET, {
    algorithm: "HS256",
    expiresIn: "15m",
    jwtid: crypto.randomUUID(),
  });
  const refresh_token = jwt.sign({ sub }, REFRESH_SECRET, {
    algorithm: "HS256",
    expiresIn: "7d",
    jwtid: crypto.randomUUID(),
  });
  return { access_token, token_type: "Bearer", expires_in: 900, refresh_token };
}

const app = express();
app.disable("x-powered-by");
app.use(express.json({ limit: "64kb" }));

app.post("/login", (req, res) => {
  const { username, password } = req.body || {};
  if (username !== USER || password !== PASSWORD) {
    return res.status(401).json({ error: "invalid username or password" });
  }
  res.set("Cache-Control", "no-store").json(pair(username));
});

app.post("/refresh", (req, res) => {
  const token = req.body && req.body.refresh_token;
  let claims;
  try {
    claims = jwt.verify(String(token), REFRESH_SECRET, { algorithms: ["HS256"] });
  } catch {
    return res.status(400).json({ error: "invalid_grant" });
  }
  res.set("Cache-Control", "no-store").json(pair(claims.sub));
});

app.listen(port, "127.0.0.1", () => {
  const mode = STRING_SECRETS ? "string" : "keyobject";
  console.log(`express reference on 127.0.0.1:${port} (secrets: ${mode})`);
});
