#!/usr/bin/env bash
# Packs the library packages (README, MIT license expression, SourceLink, .snupkg symbols) into a local folder, then builds
# and runs samples/package-smoke against that folder only, as a user installing from NuGet would. Prints PASS or FAIL
# and exits non-zero on failure. Expects a Release build of src/ (scripts/test.sh builds first); --build builds here.
set -uo pipefail
cd "$(dirname "$0")/.."

version=0.1.0
work=$(mktemp -d /tmp/eiosharp-pack-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
build_flag=--no-build
[ "${1:-}" = --build ] && build_flag=

fail() { echo "pack-smoke: FAIL: $*"; exit 1; }

for project in EioSharp.Core EioSharp EioSharp.Mock EioSharp.Supervision EioSharp.Supervision.Hosting; do
  dotnet pack "src/$project/$project.csproj" -c Release $build_flag -o "$feed" -p:Version=$version -v quiet -nologo >"$work/pack.log" 2>&1 \
    || { cat "$work/pack.log"; fail "dotnet pack $project"; }
  [ -f "$feed/$project.$version.nupkg" ] || fail "no $project.$version.nupkg"
  [ -f "$feed/$project.$version.snupkg" ] || fail "no $project.$version.snupkg (symbols)"
  nuspec=$(unzip -p "$feed/$project.$version.nupkg" "$project.nuspec")
  grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || fail "$project: no MIT license expression"
  grep -q '<readme>README.md</readme>' <<<"$nuspec" || fail "$project: no readme"
  listing=$(unzip -l "$feed/$project.$version.nupkg")
  grep -q ' README.md$' <<<"$listing" || fail "$project: README.md not in the package"
  grep -q "lib/net10.0/$project.xml" <<<"$listing" || fail "$project: no XML docs"
done

# The sample, outside the repository: the local feed plus the user's usual sources; its own package folder so that a
# stale EioSharp $version from an earlier run can never be used (the machine's package folder serves the rest).
mkdir -p "$work/sample"
cp samples/package-smoke/Program.cs "$work/sample/"
sed "s/@VERSION@/$version/g" samples/package-smoke/PackageSmoke.csproj.in >"$work/sample/PackageSmoke.csproj"
global_packages=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
cat >"$work/sample/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="eiosharp-local" value="$feed" />
  </packageSources>
  <fallbackPackageFolders>
    <add key="machine" value="$global_packages" />
  </fallbackPackageFolders>
</configuration>
XML
out=$(cd "$work/sample" && NUGET_PACKAGES="$work/packages" dotnet run -c Release -nologo 2>&1) || { echo "$out"; fail "the sample did not build or run"; }
for expected in "sum 55" "+slept until 5s of virtual time" "supervisor running" "supervisor stopped"; do
  grep -qF -- "$expected" <<<"$out" || { echo "$out"; fail "the sample did not print '$expected'"; }
done
[ -d "$work/packages/eiosharp/$version" ] || fail "the sample did not restore EioSharp from the local folder"

# SourceLink, checked rather than assumed: the .snupkg's portable PDB must carry the SourceLink JSON (its custom debug
# information, stored as plain UTF-8) mapping the sources to the repository at this exact commit. SourceLink reads the
# commit and the "origin" URL from git; CI clones have a local path as origin (no source link at all, only a build
# warning), so EioSharp.Core is packed once more from a throwaway clone whose origin is a GitHub URL (a stand-in: the
# project has no public remote yet; any github.com URL exercises the same mapping).
commit=$(git rev-parse HEAD 2>/dev/null) || fail "not a git checkout: SourceLink cannot be checked"
git clone -q . "$work/clone" || fail "git clone for the SourceLink check"
git -C "$work/clone" remote set-url origin https://github.com/eiosharp/eiosharp.git
(cd "$work/clone" && dotnet pack src/EioSharp.Core/EioSharp.Core.csproj -c Release -o "$work/sl-feed" -p:Version=$version \
  -p:EioSharpSourceLink=true -p:ContinuousIntegrationBuild=true -v quiet -nologo >"$work/sl-pack.log" 2>&1) \
  || { cat "$work/sl-pack.log"; fail "dotnet pack EioSharp.Core for the SourceLink check"; }
unzip -p "$work/sl-feed/EioSharp.Core.$version.snupkg" lib/net10.0/EioSharp.Core.pdb >"$work/EioSharp.Core.pdb" \
  || fail "no lib/net10.0/EioSharp.Core.pdb in the symbol package"
expected="https://raw.githubusercontent.com/eiosharp/eiosharp/$commit/*"
mapping=$(grep -ao '{"documents":{[^}]*}}' "$work/EioSharp.Core.pdb" | head -1)
grep -qF "\":\"$expected\"}}" <<<"$mapping" \
  || { echo "found: ${mapping:-nothing}"; fail "the symbol package's PDB has no SourceLink mapping to $expected"; }
echo "pack-smoke: SourceLink: $mapping"
echo "pack-smoke: PASS (5 packages with README, MIT, symbols; SourceLink in the PDB; sample built and ran against them)"
