# Sign one file with Authenticode: signtool from the Windows SDK, the
# publisher's code-signing certificate, and an RFC 3161 timestamp.
#
#   powershell -NoProfile -ExecutionPolicy Bypass -File packaging\windows\sign.ps1 FILE
#
# Reads, from the environment (the release workflow maps them from secrets
# and variables):
#   WINDOWS_CERTIFICATE_PFX       the certificate and key as a base64 PFX file
#   WINDOWS_CERTIFICATE_PASSWORD  the PFX password
#   WINDOWS_TIMESTAMP_URL         the timestamp server of the certificate's CA
#
# Exits non-zero when any of them is missing or signtool fails, so that an
# unsigned file is never mistaken for a signed one. The workflow calls this
# only when WINDOWS_CERTIFICATE_PFX is set.

param([Parameter(Mandatory = $true)][string]$File)

$ErrorActionPreference = 'Stop'

foreach ($name in 'WINDOWS_CERTIFICATE_PFX', 'WINDOWS_CERTIFICATE_PASSWORD', 'WINDOWS_TIMESTAMP_URL') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Write-Error "sign.ps1: $name is not set; see packaging/README.md, Code signing"
        exit 1
    }
}

# The newest x64 signtool of the installed Windows 10/11 SDKs.
$signtool = Get-ChildItem "${env:ProgramFiles(x86)}\Windows Kits\10\bin\*\x64\signtool.exe" |
    Sort-Object FullName -Descending | Select-Object -First 1
if (-not $signtool) {
    Write-Error "sign.ps1: signtool.exe not found; install the Windows SDK"
    exit 1
}

$pfx = Join-Path ([IO.Path]::GetTempPath()) ("wardmail-" + [Guid]::NewGuid() + ".pfx")
try {
    [IO.File]::WriteAllBytes($pfx, [Convert]::FromBase64String($env:WINDOWS_CERTIFICATE_PFX))
    & $signtool.FullName sign /fd SHA256 /td SHA256 /tr $env:WINDOWS_TIMESTAMP_URL `
        /f $pfx /p $env:WINDOWS_CERTIFICATE_PASSWORD /d "Wardmail" $File
    if ($LASTEXITCODE -ne 0) {
        Write-Error "sign.ps1: signtool failed on $File with exit code $LASTEXITCODE"
        exit $LASTEXITCODE
    }
    & $signtool.FullName verify /pa $File
    if ($LASTEXITCODE -ne 0) {
        Write-Error "sign.ps1: the signature of $File does not verify"
        exit $LASTEXITCODE
    }
}
finally {
    Remove-Item -Force -ErrorAction SilentlyContinue $pfx
}
