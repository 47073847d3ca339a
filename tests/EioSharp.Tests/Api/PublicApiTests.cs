using System.Reflection;
using System.Text;

namespace EioSharp.Tests.Api;

/// <summary>
/// Pins the public API of EioSharp.Core, EioSharp and EioSharp.Mock: any change to a public type or member shows up as a
/// failing test with the new listing written next to the expected one, so API changes are always deliberate.
/// To accept a change: copy PublicApi.actual.txt over PublicApi.txt (in the test project's source folder).
/// </summary>
public class PublicApiTests
{
    [Fact]
    public void PublicApiMatchesTheCheckedInListing()
    {
        var actual = Describe(typeof(Switch).Assembly, typeof(EioMain).Assembly, typeof(Mock.MockMain).Assembly);
        string dir = Path.Combine(FindRepoRoot(), "tests", "EioSharp.Tests", "Api");
        string expectedPath = Path.Combine(dir, "PublicApi.txt");
        string expected = File.Exists(expectedPath) ? File.ReadAllText(expectedPath).ReplaceLineEndings("\n") : string.Empty;
        if (expected != actual)
        {
            File.WriteAllText(Path.Combine(dir, "PublicApi.actual.txt"), actual);
            var missing = expected.Split('\n').Except(actual.Split('\n')).Take(20);
            var added = actual.Split('\n').Except(expected.Split('\n')).Take(20);
            Assert.Fail("The public API changed. Removed or changed:\n  " + string.Join("\n  ", missing) +
                "\nAdded or changed:\n  " + string.Join("\n  ", added) + "\nSee PublicApi.actual.txt.");
        }
    }

    private static string Describe(params Assembly[] assemblies)
    {
        var lines = new List<string>();
        foreach (var asm in assemblies)
        {
            foreach (var t in asm.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
            {
                string kind = t.IsInterface ? "interface" : t.IsEnum ? "enum" : t.IsValueType ? "struct" : t.IsAbstract && t.IsSealed ? "static class" : t.IsSealed ? "sealed class" : t.IsAbstract ? "abstract class" : "class";
                lines.Add($"{asm.GetName().Name}: {kind} {t.FullName}" + (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) ? $" : {b.FullName}" : string.Empty));
                const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
                foreach (var m in t.GetMembers(flags).Where(m => m is not MethodInfo { IsSpecialName: true }).Select(m => "  " + m).Order(StringComparer.Ordinal))
                {
                    lines.Add(m);
                }
            }
        }

        var sb = new StringBuilder();
        foreach (var l in lines)
        {
            sb.Append(l).Append('\n');
        }

        return sb.ToString();
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "EioSharp.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("EioSharp.slnx not found above " + AppContext.BaseDirectory);
    }
}
