# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_zc_global_optspecs
    string join \n h/help V/version
end

function __fish_zc_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_zc_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_zc_using_subcommand
    set -l cmd (__fish_zc_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c zc -n "__fish_zc_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zc -n "__fish_zc_needs_command" -s V -l version -d 'Print version'
complete -c zc -n "__fish_zc_needs_command" -f -a "send" -d 'Send files and directories (\'-\' for stdin) to a receiver at HOST:PORT, or with --listen wait for a receiver to connect (with -k, for every receiver until interrupted)'
complete -c zc -n "__fish_zc_needs_command" -f -a "recv" -d 'Listen and receive (default [::]:9000, into the current directory, announced on the LAN), or connect to a listening sender at HOST:PORT or announced as @NAME'
complete -c zc -n "__fish_zc_needs_command" -f -a "peers" -d 'List the zc receivers and serving senders announced on the LAN'
complete -c zc -n "__fish_zc_needs_command" -f -a "completions" -d 'Print a completion script for a shell'
complete -c zc -n "__fish_zc_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zc -n "__fish_zc_using_subcommand send" -s l -l listen -d 'Reverse mode: listen here (PORT, HOST:PORT, [V6]:PORT) and send to the receiver that connects (\'zc recv HOST:PORT\')' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l offset -d 'Start at this byte of FILE; the receiver writes at the same offset' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l count -d 'Send at most this many bytes from the offset' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l name -d 'The name announced for a single source (default: its base name)' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l retry -d 'On a dropped connection, reconnect up to N times with backoff and resume (framed mode only: not with --raw)' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l max-conns -d 'With -k: at most N transfers at once; later receivers wait their turn (default 256)' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l connect-timeout -d 'Give up connecting after this many seconds' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l timeout -d 'Give up when no byte has moved for this many seconds' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l limit-rate -d 'Move at most RATE bytes a second (500K, 10M, 1.5G: the suffixes of --offset). The sender paces what it hands to sendfile, the receiver what it reads; either side can set it' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l progress -d 'How to show progress on stderr' -r -f -a "auto\t'A bar when stderr is a terminal, nothing otherwise'
bar\t'Always a bar'
plain\t'One line per second, for logs'
none\t'No progress, only the summary'"
complete -c zc -n "__fish_zc_using_subcommand send" -l key -d 'Pre-shared key: both sides must hold it. It authenticates both ends and encrypts the whole session (names, sizes, data) with AES-256-GCM after a SPAKE2 handshake; a wrong key is refused before anything is sent. The bytes then go through user space (no sendfile or splice; see --no-encrypt). Prefer ZC_KEY: a command line shows in ps' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l code -d 'A one-time code instead of a key. Alone on the listening side (\'zc recv --code\'), zc makes a fresh one and prints it with the command to run on the other side, which gives it (\'--code 7-plaza-quartz-ember\'). Encrypts the session as a key does; one wrong try burns the code' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l announce -d 'Listening: the name announced on the LAN (default: this host\'s name)' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l find-timeout -d 'Looking for a peer on the LAN (@NAME, or no address): give up after this many seconds' -r
complete -c zc -n "__fish_zc_using_subcommand send" -l no-resume -d 'Start at --offset (default 0) even if the receiver holds a partial copy'
complete -c zc -n "__fish_zc_using_subcommand send" -s L -l dereference -d 'In a directory, follow symbolic links and send what they point to (without it, links that stay inside the tree are sent as links)'
complete -c zc -n "__fish_zc_using_subcommand send" -s k -l keep-open -d 'With --listen: serve the sources to every receiver that connects, several at once, until interrupted; each file is hashed once, not once per receiver'
complete -c zc -n "__fish_zc_using_subcommand send" -l no-sendfile -d 'Use the buffered copy path instead of sendfile(2)'
complete -c zc -n "__fish_zc_using_subcommand send" -l http -d 'Serve the sources over plain HTTP/1.1 to any client (curl, wget, a browser) until interrupted, on --listen ADDR (default [::]:9000); the URLs carry a random token unless --open; refused with a key or a code, which plain HTTP cannot carry'
complete -c zc -n "__fish_zc_using_subcommand send" -l open -d 'With --http: serve without the token in the URLs, to anyone who can reach the port (a trusted network only)'
complete -c zc -n "__fish_zc_using_subcommand send" -l raw -d 'Plain bytes, no header or negotiation: talks to nc, socat, /dev/tcp'
complete -c zc -n "__fish_zc_using_subcommand send" -l no-verify -d 'Skip the SHA-256 end-to-end check'
complete -c zc -n "__fish_zc_using_subcommand send" -s 4 -d 'Use IPv4 only'
complete -c zc -n "__fish_zc_using_subcommand send" -s 6 -d 'Use IPv6 only'
complete -c zc -n "__fish_zc_using_subcommand send" -s q -l quiet -d 'No progress and no summary; errors still go to stderr'
complete -c zc -n "__fish_zc_using_subcommand send" -l json -d 'Every line written to stderr is one JSON object'
complete -c zc -n "__fish_zc_using_subcommand send" -l no-announce -d 'Listening: do not announce on the LAN'
complete -c zc -n "__fish_zc_using_subcommand send" -l no-encrypt -d 'With a key: authenticate both ends but send in the clear, so sendfile(2) and splice(2) stay zero-copy. Anyone on the path can read names, sizes and data (the digests are keyed, so changes are still caught). For a trusted link; both sides must agree'
complete -c zc -n "__fish_zc_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zc -n "__fish_zc_using_subcommand send" -s V -l version -d 'Print version'
complete -c zc -n "__fish_zc_using_subcommand recv" -s l -l listen -d 'Where to listen: PORT, HOST:PORT or [V6]:PORT (port 0 picks a free one)' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -s o -l output -d 'A file, an existing directory, or \'-\' for stdout (default: the current directory)' -r -F
complete -c zc -n "__fish_zc_using_subcommand recv" -l max-conns -d 'With -k: at most N transfers at once; later senders wait their turn (default 256)' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l max-size -d 'Refuse transfers larger than this' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l max-files -d 'Refuse a tree with more entries than this' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l max-memory -d 'Refuse a tree whose manifest would take the receiver past this much memory for manifests (the files asked for, the directories and links kept for the end): the receiver\'s whole budget, shared by the sessions of -k; 256M holds a million entries of ordinary names' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l offset -d 'With --raw: write from this byte of the output file, without truncating it' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l connect-timeout -d 'Give up connecting after this many seconds' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l timeout -d 'Give up when no byte has moved for this many seconds' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l limit-rate -d 'Move at most RATE bytes a second (500K, 10M, 1.5G: the suffixes of --offset). The sender paces what it hands to sendfile, the receiver what it reads; either side can set it' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l progress -d 'How to show progress on stderr' -r -f -a "auto\t'A bar when stderr is a terminal, nothing otherwise'
bar\t'Always a bar'
plain\t'One line per second, for logs'
none\t'No progress, only the summary'"
complete -c zc -n "__fish_zc_using_subcommand recv" -l key -d 'Pre-shared key: both sides must hold it. It authenticates both ends and encrypts the whole session (names, sizes, data) with AES-256-GCM after a SPAKE2 handshake; a wrong key is refused before anything is sent. The bytes then go through user space (no sendfile or splice; see --no-encrypt). Prefer ZC_KEY: a command line shows in ps' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l code -d 'A one-time code instead of a key. Alone on the listening side (\'zc recv --code\'), zc makes a fresh one and prints it with the command to run on the other side, which gives it (\'--code 7-plaza-quartz-ember\'). Encrypts the session as a key does; one wrong try burns the code' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l announce -d 'Listening: the name announced on the LAN (default: this host\'s name)' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l find-timeout -d 'Looking for a peer on the LAN (@NAME, or no address): give up after this many seconds' -r
complete -c zc -n "__fish_zc_using_subcommand recv" -l force -d 'Overwrite an existing complete file'
complete -c zc -n "__fish_zc_using_subcommand recv" -s p -l preserve-modes -d 'Give what arrives the sender\'s permission bits exactly, not less this side\'s umask (setuid, setgid and sticky are never set)'
complete -c zc -n "__fish_zc_using_subcommand recv" -s k -l keep-open -d 'Keep listening and accept transfers concurrently until interrupted'
complete -c zc -n "__fish_zc_using_subcommand recv" -l http -d 'Take uploads over plain HTTP/1.1 from any client (curl -T, a browser\'s upload page) into the -o directory until interrupted, on --listen ADDR (default [::]:9000); the URLs carry a random token unless --open; refused with a key or a code, which plain HTTP cannot carry'
complete -c zc -n "__fish_zc_using_subcommand recv" -l open -d 'With --http: take uploads without the token in the URLs, from anyone who can reach the port (a trusted network only)'
complete -c zc -n "__fish_zc_using_subcommand recv" -l raw -d 'Plain bytes, no header or negotiation: talks to nc, socat, /dev/tcp'
complete -c zc -n "__fish_zc_using_subcommand recv" -l no-verify -d 'Skip the SHA-256 end-to-end check'
complete -c zc -n "__fish_zc_using_subcommand recv" -s 4 -d 'Use IPv4 only'
complete -c zc -n "__fish_zc_using_subcommand recv" -s 6 -d 'Use IPv6 only'
complete -c zc -n "__fish_zc_using_subcommand recv" -s q -l quiet -d 'No progress and no summary; errors still go to stderr'
complete -c zc -n "__fish_zc_using_subcommand recv" -l json -d 'Every line written to stderr is one JSON object'
complete -c zc -n "__fish_zc_using_subcommand recv" -l no-announce -d 'Listening: do not announce on the LAN'
complete -c zc -n "__fish_zc_using_subcommand recv" -l no-encrypt -d 'With a key: authenticate both ends but send in the clear, so sendfile(2) and splice(2) stay zero-copy. Anyone on the path can read names, sizes and data (the digests are keyed, so changes are still caught). For a trusted link; both sides must agree'
complete -c zc -n "__fish_zc_using_subcommand recv" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zc -n "__fish_zc_using_subcommand recv" -s V -l version -d 'Print version'
complete -c zc -n "__fish_zc_using_subcommand peers" -l find-timeout -d 'How long to listen for answers, in seconds' -r
complete -c zc -n "__fish_zc_using_subcommand peers" -s w -l watch -d 'Keep listing, as peers come and go, until interrupted'
complete -c zc -n "__fish_zc_using_subcommand peers" -l json -d 'One JSON object a line, one per peer'
complete -c zc -n "__fish_zc_using_subcommand peers" -s h -l help -d 'Print help'
complete -c zc -n "__fish_zc_using_subcommand peers" -s V -l version -d 'Print version'
complete -c zc -n "__fish_zc_using_subcommand completions" -s h -l help -d 'Print help'
complete -c zc -n "__fish_zc_using_subcommand completions" -s V -l version -d 'Print version'
complete -c zc -n "__fish_zc_using_subcommand help; and not __fish_seen_subcommand_from send recv peers completions help" -f -a "send" -d 'Send files and directories (\'-\' for stdin) to a receiver at HOST:PORT, or with --listen wait for a receiver to connect (with -k, for every receiver until interrupted)'
complete -c zc -n "__fish_zc_using_subcommand help; and not __fish_seen_subcommand_from send recv peers completions help" -f -a "recv" -d 'Listen and receive (default [::]:9000, into the current directory, announced on the LAN), or connect to a listening sender at HOST:PORT or announced as @NAME'
complete -c zc -n "__fish_zc_using_subcommand help; and not __fish_seen_subcommand_from send recv peers completions help" -f -a "peers" -d 'List the zc receivers and serving senders announced on the LAN'
complete -c zc -n "__fish_zc_using_subcommand help; and not __fish_seen_subcommand_from send recv peers completions help" -f -a "completions" -d 'Print a completion script for a shell'
complete -c zc -n "__fish_zc_using_subcommand help; and not __fish_seen_subcommand_from send recv peers completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
