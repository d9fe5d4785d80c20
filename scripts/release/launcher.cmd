@echo off
rem docker-image-pusher: runs the program bundled in this kit with the Deno runtime bundled
rem beside it. Nothing else is needed: no Deno or Node installed, no network.
rem (Made by scripts/release.ts from scripts/release/launcher.cmd.)
setlocal
rem No update check (it would reach the network), no permission prompt (it would stop a script).
set "DENO_NO_UPDATE_CHECK=1"
set "DENO_NO_PROMPT=1"
rem %~dp0 is this file's folder, with a trailing backslash.
"%~dp0..\lib\deno.exe" run @DENO_FLAGS@ "%~dp0..\lib\docker-image-pusher.js" %*
exit /b %ERRORLEVEL%
