using System.Reflection;
using System.Text;
using EioSharp.Mock;
using Xunit.Sdk;

namespace EioSharp.Tests.Core;

/// <summary>The backends a semantics scenario runs on.</summary>
public enum Backend
{
    /// <summary>MockMain: one domain, virtual time, deadlock detection.</summary>
    Mock,

    /// <summary>EioMain: the real scheduler on the test thread, real time, real domains.</summary>
    Real,
}

/// <summary>Supplies <see cref="Backend.Mock"/> and <see cref="Backend.Real"/> to a theory.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BothBackendsAttribute : DataAttribute
{
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) =>
        [[Backend.Mock], [Backend.Real]];
}

/// <summary>How a real-backend run is compared with the expected transcript.</summary>
public enum RealCheck
{
    /// <summary>Same lines in the same order (the scenario's order does not depend on real time).</summary>
    Transcript,

    /// <summary>Same lines in any order (the order depends on real timer resolution).</summary>
    SameLines,

    /// <summary>Only the outcome line (the exception, or none) must match.</summary>
    Outcome,
}

/// <summary>Runs one scenario body on either backend and captures its transcript.</summary>
internal static partial class Scenario
{
    [System.Text.RegularExpressions.GeneratedRegex(@"^\[domain-[0-9]+\] ")]
    private static partial System.Text.RegularExpressions.Regex DefaultDomainPrefix();

    /// <summary>Runs <paramref name="main"/> and returns the transcript: "+line" per trace line, then "Exception: ..." if it failed.</summary>
    public static string Trace(Backend backend, Func<Stdenv, Task> main)
    {
        if (backend == Backend.Mock)
        {
            return MockMain.Trace(main);
        }

        var sb = new StringBuilder();
        var writer = new StringWriter(sb) { NewLine = "\n" };
        string? failure = null;
        try
        {
            EioMain.Run(env => TraceLog.WithWriterAsync(writer, () => main(env)));
        }
        catch (Exception ex)
        {
            failure = "Exception: " + MockMain.Describe(ex) + "\n";
        }

        // The real main domain writes lines without a prefix; mark them like the mock does so one expected text serves both.
        var lines = sb.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var result = new StringBuilder();
        foreach (var line in lines)
        {
            // Other domains get "[domain-N] " prefixes whose N depends on how many domains the process made before.
            result.Append('+').Append(DefaultDomainPrefix().Replace(line, string.Empty)).Append('\n');
        }

        result.Append(failure);
        return result.ToString();
    }

    /// <summary>Runs the scenario on <paramref name="backend"/> and checks it against <paramref name="expected"/>.</summary>
    public static void Expect(Backend backend, string expected, Func<Stdenv, Task> main, RealCheck real = RealCheck.Transcript)
    {
        var actual = Trace(backend, main);
        if (backend == Backend.Mock || real == RealCheck.Transcript)
        {
            if (expected != actual)
            {
                throw new XunitException($"Transcript differs ({backend}).\n--- expected ---\n{expected}--- actual ---\n{actual}---");
            }
        }
        else if (real == RealCheck.SameLines)
        {
            Assert.Equal(Sorted(expected), Sorted(actual));
        }
        else
        {
            Assert.Equal(Outcome(expected), Outcome(actual));
        }
    }

    private static string Sorted(string transcript) =>
        string.Join("\n", transcript.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));

    private static string Outcome(string transcript) =>
        transcript.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith("Exception: ", StringComparison.Ordinal)) ?? "(none)";

    /// <summary>A short duration: virtual on the mock, real (and small) on the real backend.</summary>
    public static TimeSpan Ms(int ms) => TimeSpan.FromMilliseconds(ms);
}

/// <summary>A distinct exception type for scenarios.</summary>
public sealed class TestFailure(string message) : Exception(message);
