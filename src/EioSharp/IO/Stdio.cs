using System.Security.Cryptography;

namespace EioSharp.IO;

/// <summary>The process's standard streams as flows, for <see cref="Stdenv"/>.</summary>
internal static class Stdio
{
    internal static IFlowSource OpenStdin() => Flow.FromStream(Console.OpenStandardInput(), ownsStream: false);

    internal static IFlowSink OpenStdout() => Flow.FromStream(Console.OpenStandardOutput(), ownsStream: false);

    internal static IFlowSink OpenStderr() => Flow.FromStream(Console.OpenStandardError(), ownsStream: false);
}

/// <summary>A source of cryptographically secure random bytes (never ends).</summary>
/// <remarks>Eio: <c>env#secure_random</c>. Reads fill the whole buffer synchronously from <see cref="RandomNumberGenerator"/>.</remarks>
internal sealed class SecureRandomSource : IFlowSource
{
    internal static readonly SecureRandomSource Instance = new();

    public ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        RandomNumberGenerator.Fill(buffer.Span);
        return new ValueTask<int>(buffer.Length);
    }
}

/// <summary>A deterministic stand-in for <see cref="SecureRandomSource"/> (mock backend: same bytes on every run).</summary>
internal sealed class SeededRandomSource(int seed) : IFlowSource
{
    private readonly Random _random = new(seed);

    public ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        _random.NextBytes(buffer.Span);
        return new ValueTask<int>(buffer.Length);
    }
}
