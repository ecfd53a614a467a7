-- Dovecot 2.3 Lua passdb used by mailstack.sh: validates an OAuth 2.0 bearer token (SASL XOAUTH2 /
-- OAUTHBEARER; Dovecot hands the token over as the "password") by asking an RFC 7662 style
-- introspection endpoint, and - unlike Dovecot's own oauth2 passdb, which sends only the token -
-- tells the endpoint which mailbox the client wants to open:
--
--   GET <url>?token=<token>&user=<SASL login user>&service=<imap|pop3|smtp>
--
-- Expected answer: HTTP 200 {"active":true,"username":"<mailbox>"} or {"active":false}.
-- Mapping (mirrors Dovecot's oauth2 passdb so clients see the same replies):
--   HTTP status not 200, bad JSON, no username  -> internal failure (client: temporary failure)
--   active is not true                          -> password mismatch (client: authentication failed)
--   username differs from the login user        -> user unknown (client: authentication failed)
--   otherwise                                   -> OK
-- @@URL@@ is replaced by mailstack.sh (the introspection URL followed by '?' or '&').

local URL = [==[@@URL@@]==]
local client = nil

local function enc(s)
  return (tostring(s or ""):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function script_init()
  client = dovecot.http.client({
    timeout = 5000,
    max_attempts = 1,
    debug = false,
    user_agent = "mailstack-dovecot-lua",
  })
  return 0
end

function auth_passdb_lookup(req)
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "this passdb only verifies bearer tokens"
end

function auth_password_verify(req, token)
  local url = URL .. "token=" .. enc(token) .. "&user=" .. enc(req.user) .. "&service=" .. enc(req.service)
  local r = client:request({ url = url, method = "GET" })
  local resp = r:submit()
  local status = resp:status()
  if status ~= 200 then
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE,
      "introspection failed: HTTP " .. tostring(status) .. " " .. tostring(resp:reason())
  end
  local body = resp:payload() or ""
  if not body:match("^%s*{") then
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "introspection failed: response is not a JSON object"
  end
  local active = body:match('"active"%s*:%s*"?(%a+)"?')
  if active ~= "true" then
    req:log_info("introspection: token is not active")
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "Provided token is not valid"
  end
  local username = body:match('"username"%s*:%s*"([^"]*)"')
  if username == nil or username == "" then
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "introspection failed: no username returned"
  end
  if string.lower(username) ~= string.lower(req.user) then
    req:log_info("introspection: token is for '" .. username .. "', not '" .. req.user .. "'")
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "Username did not match"
  end
  return dovecot.auth.PASSDB_RESULT_OK, {}
end
