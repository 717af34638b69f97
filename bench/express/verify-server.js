// Reference server for bench/http_verify.py: the seed's Express sketch of a protected route.
// GET /protected takes the token from `Authorization: Bearer ...` (split on the space, as
// the sketch does), verifies it with jsonwebtoken (HS256, signature and exp; the sketch
// checks no issuer, audience or type) and answers 200 with the sketch's JSON body; no
// token: 401; a bad one: 403 (the sketch's choice, where RFC 6750 says 401).
//
//   BENCH_SECRET=... node verify-server.js PORT        (listens on 127.0.0.1)
//
// BENCH_SECRET is the HS256 secret; the bench signs the tokens with it.
// SECRET_MODE=string (the default, as in the sketch) passes the secret as a string: then
// jsonwebtoken 9 first tries to parse it as a PEM key on every verify (createPublicKey)
// and only then falls back to an HMAC key (auth0/node-jsonwebtoken#966, #944).
// SECRET_MODE=keyobject prepares the key once with crypto.createSecretKey, the fast way.
"use strict";

const crypto = require("node:crypto");
const express = require("express");
const jwt = require("jsonwebtoken");

const port = Number.parseInt(process.argv[2] || "3000", 10);
const text = process.env.BENCH_SECRET;
if (!text || text.length < 32) {
  console.error("BENCH_SECRET (at least 32 characters) is required");
  process.exit(2);
}
const KEY_OBJECT = process.env.SECRET_MODE === "keyobject";
const SECRET_KEY = KEY_OBJECT ? crypto.createSecretKey(Buffer.from(text)) : text;

// Middleware to authenticate token (the sketch, unchanged but for the key).
function authenticateToken(req, res, next) {
  const authHeader = req.headers["authorization"];
  const token = authHeader && authHeader.split(" ")[1];

  if (token == null) return res.sendStatus(401);

  jwt.verify(token, SECRET_KEY, (err, user) => {
    if (err) return res.sendStatus(403);
    req.user = user;
    next();
  });
}

const app = express();
app.disable("x-powered-by");

app.get("/protected", authenticateToken, (req, res) => {
  res.json({ message: "Access granted to protected route", user: req.user });
});

app.listen(port, "127.0.0.1", () => {
  const mode = KEY_OBJECT ? "keyobject" : "string";
  console.log(`express verify reference on 127.0.0.1:${port} (secret: ${mode})`);
});
