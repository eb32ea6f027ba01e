# Licenses as nixpkgs writes them: each has its SPDX identifier (what
# SBOMs read: meta.license.spdxId), a full name and whether it is free.
let
  spdx = spdxId: fullName: { inherit spdxId fullName; url = "https://spdx.org/licenses/${spdxId}.html"; free = true; };
in {
  gpl2Plus = spdx "GPL-2.0-or-later" "GNU General Public License v2.0 or later";
  gpl3Plus = spdx "GPL-3.0-or-later" "GNU General Public License v3.0 or later";
  lgpl21Plus = spdx "LGPL-2.1-or-later" "GNU Lesser General Public License v2.1 or later";
  mit = spdx "MIT" "MIT License";
  zlib = spdx "Zlib" "zlib License";
  bsdOriginal = spdx "BSD-4-Clause" "BSD 4-Clause \"Original\" or \"Old\" License";
  bzip2-1010 = spdx "bzip2-1.0.6" "bzip2 and libbzip2 License v1.0.6";
  zeroBSD = spdx "0BSD" "BSD Zero Clause License";
  publicDomain = { spdxId = "LicenseRef-PublicDomain"; fullName = "Public Domain"; free = true; };
  # kiln's own license, for the pieces written in this repository.
  mitOrApache2 = { spdxId = "MIT OR Apache-2.0"; fullName = "MIT License or Apache License 2.0"; free = true; };
  cc0 = spdx "CC0-1.0" "Creative Commons Zero v1.0 Universal";
  gfdl13Plus = spdx "GFDL-1.3-or-later" "GNU Free Documentation License v1.3 or later";
}
