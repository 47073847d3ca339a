namespace EioSharp.Fs;

/// <summary>Chooses the filesystem implementation behind <c>env.Fs</c> and <c>env.Cwd</c>: the one place that decides.</summary>
/// <remarks>
/// <para>
/// On Linux the native layer (<see cref="NativeFs"/>: <c>openat2</c>/<c>openat</c> and other <c>*at</c> system calls on
/// directory descriptors) is used. Elsewhere (macOS, Windows) <see cref="PortableFs"/> is used, which calls only .NET's
/// file APIs. Setting the environment variable <c>EIOSHARP_FS=portable</c> forces the portable implementation on Linux
/// too (read once, when the process first touches the filesystem layer), so its conformance can be tested here;
/// <c>EIOSHARP_FS=native</c> is accepted and means the default.
/// </para>
/// </remarks>
internal static class FsPlatform
{
    /// <summary>The environment variable that forces an implementation: <c>portable</c> or <c>native</c>.</summary>
    public const string Variable = "EIOSHARP_FS";

    /// <summary>Gets whether the portable implementation serves new roots (<c>env.Fs</c>, <c>env.Cwd</c>) and open files.</summary>
    public static bool UsePortable { get; } = Choose(Environment.GetEnvironmentVariable(Variable), OperatingSystem.IsLinux());

    /// <summary>Decides from the variable's value and the platform.</summary>
    /// <exception cref="ArgumentException">The variable has another value (a typo must not silently select an implementation).</exception>
    internal static bool Choose(string? value, bool isLinux) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" => !isLinux,
        "portable" => true,
        "native" when isLinux => false,
        "native" => throw new PlatformNotSupportedException($"{Variable}=native: the native filesystem layer needs Linux."),
        _ => throw new ArgumentException($"{Variable}='{value}' is not 'portable' or 'native'."),
    };
}
