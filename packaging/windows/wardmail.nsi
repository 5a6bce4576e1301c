; Wardmail installer for Windows (NSIS 3.08 or later, Unicode, 64-bit).
;
; The release workflow runs this on a Windows runner after
; `cargo build --release`, so the installer packages that binary as it is:
;
;   makensis /DVERSION=0.1.0 /DEXE=..\..\target\release\wardmail.exe ^
;            /DOUTFILE=..\..\target\wardmail-0.1.0-setup.exe packaging\windows\wardmail.nsi
;
; Relative paths are resolved from this folder. VERSION must be three
; numbers (x.y.z), because Windows version resources take only numbers.
; With /DSIGN_COMMAND="cmd" the installer and its uninstaller are signed by
; running `cmd "FILE"` on each (see sign.ps1 and packaging/README.md).
;
; What the installer does, for all users of the machine:
;   - copies wardmail.exe to Program Files\Wardmail with an uninstaller;
;   - adds a Start-menu entry and an Add/Remove Programs entry;
;   - registers Wardmail as a mail client that can handle mailto: links, so
;     it is offered under Settings > Apps > Default apps (Windows does not
;     let an installer make itself the default);
;   - installs the clinic policy to %ProgramData%\Wardmail\policy.toml from
;     /POLICY=FILE on its command line, or from a policy.toml next to the
;     installer. Silent installs for IT: `wardmail-0.1.0-setup.exe /S`.
;
; The uninstaller removes all of that except the clinic policy, which IT
; owns, and each user's mail profile under %APPDATA%.

Unicode true
ManifestDPIAware true
RequestExecutionLevel admin
SetCompressor /SOLID lzma

!ifndef VERSION
  !error "pass the version as /DVERSION=x.y.z"
!endif
!ifndef EXE
  !error "pass the path of the release binary as /DEXE=path\to\wardmail.exe"
!endif
!ifndef OUTFILE
  !define OUTFILE "wardmail-${VERSION}-setup.exe"
!endif

!define PRODUCT "Wardmail"
!define PUBLISHER "Wardmail contributors"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Wardmail"
!define CLIENT_KEY "Software\Clients\Mail\Wardmail"
!define PROGID "Wardmail.mailto"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "x64.nsh"

!ifdef SIGN_COMMAND
  !finalize '${SIGN_COMMAND} "%1"' = 0
  !uninstfinalize '${SIGN_COMMAND} "%1"' = 0
!endif

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${PRODUCT}"
InstallDirRegKey HKLM "${UNINSTALL_KEY}" "InstallLocation"
BrandingText "${PRODUCT} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}"

!define MUI_ICON "..\..\assets\icons\wardmail.ico"
!define MUI_UNICON "..\..\assets\icons\wardmail.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\wardmail.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Open ${PRODUCT}"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${PRODUCT} needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  ; $SMPROGRAMS and $APPDATA then name the all-users folders, and $APPDATA
  ; is %ProgramData%.
  SetShellVarContext all
FunctionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

; Copies the clinic policy named by /POLICY=FILE, or the policy.toml next to
; the installer, to %ProgramData%\Wardmail\policy.toml. A /POLICY file that
; does not exist stops the installation, because IT asked for it by name.
Function InstallPolicy
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/POLICY=" $R1
  ${If} ${Errors}
    StrCpy $R1 "$EXEDIR\policy.toml"
    ${IfNot} ${FileExists} "$R1"
      DetailPrint "No clinic policy next to the installer; the existing one, if any, is kept."
      Return
    ${EndIf}
  ${ElseIfNot} ${FileExists} "$R1"
    MessageBox MB_ICONSTOP "The clinic policy $R1 given with /POLICY does not exist." /SD IDOK
    SetErrorLevel 2
    Quit
  ${EndIf}

  CreateDirectory "$APPDATA\${PRODUCT}"
  ClearErrors
  CopyFiles /SILENT "$R1" "$APPDATA\${PRODUCT}\policy.toml"
  ${If} ${Errors}
    MessageBox MB_ICONSTOP "Cannot copy the clinic policy $R1 to $APPDATA\${PRODUCT}." /SD IDOK
    SetErrorLevel 2
    Quit
  ${EndIf}
  DetailPrint "Installed the clinic policy from $R1."
  ; NOTE: the folder inherits the ProgramData permissions, which let users
  ; create files in it. A user could add a policy where IT placed none, but
  ; cannot change IT's file. Tightening this needs the AccessControl plugin,
  ; which Debian's nsis package does not include.
FunctionEnd

Section "${PRODUCT}"
  SetOutPath "$INSTDIR"
  File "/oname=wardmail.exe" "${EXE}"
  File "/oname=wardmail.ico" "..\..\assets\icons\wardmail.ico"
  File "/oname=policy.example.toml" "..\policy.example.toml"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateShortCut "$SMPROGRAMS\${PRODUCT}.lnk" "$INSTDIR\wardmail.exe" "" "$INSTDIR\wardmail.ico" 0

  Call InstallPolicy

  ; mailto: handler. Windows offers a registered application for each
  ; scheme listed under Capabilities\URLAssociations; the ProgId's command
  ; receives the link as %1.
  WriteRegStr HKLM "Software\Classes\${PROGID}" "" "${PRODUCT} mailto link"
  WriteRegStr HKLM "Software\Classes\${PROGID}\DefaultIcon" "" "$INSTDIR\wardmail.ico,0"
  WriteRegStr HKLM "Software\Classes\${PROGID}\shell\open\command" "" '"$INSTDIR\wardmail.exe" "%1"'
  WriteRegStr HKLM "${CLIENT_KEY}" "" "${PRODUCT}"
  WriteRegStr HKLM "${CLIENT_KEY}\DefaultIcon" "" "$INSTDIR\wardmail.ico,0"
  WriteRegStr HKLM "${CLIENT_KEY}\shell\open\command" "" '"$INSTDIR\wardmail.exe"'
  WriteRegStr HKLM "${CLIENT_KEY}\Capabilities" "ApplicationName" "${PRODUCT}"
  WriteRegStr HKLM "${CLIENT_KEY}\Capabilities" "ApplicationDescription" "Mail client for clinic staff"
  WriteRegStr HKLM "${CLIENT_KEY}\Capabilities" "ApplicationIcon" "$INSTDIR\wardmail.ico,0"
  WriteRegStr HKLM "${CLIENT_KEY}\Capabilities\URLAssociations" "mailto" "${PROGID}"
  WriteRegStr HKLM "Software\RegisteredApplications" "${PRODUCT}" "${CLIENT_KEY}\Capabilities"

  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\wardmail.ico"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "EstimatedSize" $0

  ; SHCNE_ASSOCCHANGED: tells Explorer to reread the associations.
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd

Section "Uninstall"
  Delete "$INSTDIR\wardmail.exe"
  Delete "$INSTDIR\wardmail.ico"
  Delete "$INSTDIR\policy.example.toml"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${PRODUCT}.lnk"

  DeleteRegKey HKLM "Software\Classes\${PROGID}"
  DeleteRegKey HKLM "${CLIENT_KEY}"
  DeleteRegValue HKLM "Software\RegisteredApplications" "${PRODUCT}"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd
