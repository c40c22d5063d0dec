--- bioxen: tell the terminal how a long run is going.
--
-- Plain Lua writing the escape sequences terminals already read, so it works in the
-- embedded REPL (where it is preloaded as the global `bioxen`), in `lua5.4` (bioxen
-- puts it on local VMs' LUA_PATH) and over SSH (copy this file onto the host's
-- LUA_PATH). Outside bioxen, terminals that know the sequences show them too
-- (Windows Terminal, WezTerm, Ghostty, iTerm2, Konsole); others ignore them.
--
--   local bioxen = require "bioxen"
--   for epoch = 1, 10 do
--     bioxen.progress(epoch * 10, "epoch " .. epoch)
--     train()
--   end
--   bioxen.progress(nil)               -- done: clear the bar
--   bioxen.notify("training finished")

local M = {}

local format, floor, tonumber, tostring = string.format, math.floor, tonumber, tostring

local function emit(sequence)
  io.stdout:write(sequence)
  io.stdout:flush()
end

-- One line of text without control characters: nothing in it can end the sequence
-- early or reach the screen as an escape.
local function clean(text)
  return (tostring(text):gsub("%c", " "))
end

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local quad = {}
    for k = 1, 4 do
      local v = floor(n / 64 ^ (4 - k)) % 64
      quad[k] = ALPHABET:sub(v + 1, v + 1)
    end
    if not b then
      quad[3], quad[4] = "=", "="
    elseif not c then
      quad[4] = "="
    end
    out[#out + 1] = table.concat(quad)
  end
  return table.concat(out)
end

local STATES = { normal = 1, error = 2, indeterminate = 3, paused = 4 }

--- Reports progress: `pct` from 0 to 100, `nil` to clear. `label`, if given, becomes
-- the status line. `state` is "normal" (the default), "error", "indeterminate" or
-- "paused".
function M.progress(pct, label, state)
  if pct == nil then
    emit("\27]9;4;0;0\7")
  else
    pct = tonumber(pct) or 0
    pct = floor(math.max(0, math.min(100, pct)) + 0.5)
    emit(format("\27]9;4;%d;%d\7", STATES[state or "normal"] or 1, pct))
  end
  if label ~= nil then
    M.status(label)
  end
end

--- Sets the status line the dashboard shows beside the VM (at most 200 characters).
function M.status(text)
  emit("\27]1337;SetUserVar=bioxen_status=" .. base64(clean(text or ""):sub(1, 200)) .. "\7")
end

--- Sends a notification: the dashboard's status bar, and the desktop if asked for.
function M.notify(text)
  text = clean(text or "")
  -- "4;..." would read as a progress report.
  if text:sub(1, 2) == "4;" then
    text = " " .. text
  end
  emit("\27]9;" .. text .. "\7")
end

return M
