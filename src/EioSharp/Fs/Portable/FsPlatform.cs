namespace EioSharp.Fs;

/// <summary>The rule that turns a run's <see cref="EioFileSystem"/> (and the <c>EIOSHARP_FS</c> override) into the layer
/// behind its <c>env.Fs</c> and <c>env.Cwd</c>. Holds no state: the result is a value of the run (issue 15).</summary>
/// <remarks>
/// <para>
/// On Linux the native layer (<see cref="NativeFs"/>: <c>openat2</c>/<c>openat</c> and other <c>*at</c> system calls on
/// directory descriptors) is the default. Elsewhere (macOS, Windows) <see cref="PortableFs"/> is used, which calls only
/// .NET's file APIs. <see cref="EioOptions.FileSystem"/> chooses by value; the environment variable <c>EIOSHARP_FS</c>
/// (<c>portable</c> or <c>native</c>) overrides an unspecified choice, read only by <see cref="EioMain"/> (so
/// <c>scripts/test.sh</c> can run the filesystem tests once more on the portable layer). The chosen layer travels with
/// the run's roots: every <see cref="DirectoryHandle"/> knows whether it is portable
/// (<see cref="DirectoryHandle.IsPortable"/>), every subtree inherits it from its parent, and every open file from the
/// directory it was opened in (<see cref="EioFile"/>).
/// </para>
/// </remarks>
internal static class FsPlatform
{
    /// <summary>The environment variable that overrides an unspecified layer: <c>portable</c> or <c>native</c>.</summary>
    public const string Variable = "EIOSHARP_FS";

    /// <summary>Decides whether a run uses the portable layer.</summary>
    /// <param name="requested">The run's <see cref="EioOptions.FileSystem"/>; null means <see cref="EioFileSystem.Auto"/>.</param>
    /// <param name="environmentOverride">The value of <c>EIOSHARP_FS</c> (null or blank: not set); consulted only when
    /// <paramref name="requested"/> is null or <see cref="EioFileSystem.Auto"/>.</param>
    /// <param name="isLinux">Whether the process runs on Linux (the native layer's only platform).</param>
    /// <returns>True for <see cref="PortableFs"/>, false for <see cref="NativeFs"/>.</returns>
    /// <exception cref="ArgumentException">The variable is consulted and has another value than <c>portable</c> or
    /// <c>native</c>, or says <c>native</c> off Linux (<see cref="ArgumentException.ParamName"/> is <c>EIOSHARP_FS</c>: a typo
    /// must not silently select a layer, and the servers exit 2 on it as on their other <c>EIOSHARP_*</c> overrides).</exception>
    /// <exception cref="PlatformNotSupportedException"><paramref name="requested"/> is <see cref="EioFileSystem.Native"/> off Linux.</exception>
    internal static bool ChoosePortable(EioFileSystem? requested, string? environmentOverride, bool isLinux)
    {
        if ((requested is null or EioFileSystem.Auto) && !string.IsNullOrWhiteSpace(environmentOverride))
        {
            requested = environmentOverride.Trim().ToLowerInvariant() switch
            {
                "portable" => EioFileSystem.Portable,
                "native" when isLinux => EioFileSystem.Native,
                "native" => throw new ArgumentException($"{Variable}=native: the native filesystem layer needs Linux.", Variable),
                _ => throw new ArgumentException($"{Variable}='{environmentOverride}' is not 'portable' or 'native'.", Variable),
            };
        }

        return requested switch
        {
            null or EioFileSystem.Auto => !isLinux,
            EioFileSystem.Portable => true,
            EioFileSystem.Native when isLinux => false,
            EioFileSystem.Native => throw new PlatformNotSupportedException("EioFileSystem.Native: the native filesystem layer needs Linux."),
            _ => throw new ArgumentOutOfRangeException(nameof(requested), requested, "Not an EioFileSystem value."),
        };
    }
}
