package adapters.logcheck;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Ed25519 keys (RFC 8032, pure), key ids (§5) and strict base64. */
final class Keys {
    /** The 12-byte SubjectPublicKeyInfo prefix of an Ed25519 key (OID 1.3.101.112). */
    private static final byte[] ED25519_SPKI_PREFIX = Hex.parse("302a300506032b6570032100");

    private static final ThreadLocal<Signature> VERIFIER = ThreadLocal.withInitial(() -> {
        try {
            return Signature.getInstance("Ed25519");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("this Java has no Ed25519", e);
        }
    });

    private Keys() {}

    /** A trusted public key and its id. */
    static final class Key {
        final PublicKey publicKey;
        final String id;
        final String origin;

        Key(PublicKey publicKey, String id, String origin) {
            this.publicKey = publicKey;
            this.id = id;
            this.origin = origin;
        }
    }

    /** Keys by id, in the order they were added. */
    static final class Ring {
        private final Map<String, Key> byId = new LinkedHashMap<>();

        Ring() {}

        Ring(Ring other) {
            byId.putAll(other.byId);
        }

        void add(Key k) {
            byId.putIfAbsent(k.id, k);
        }

        Key get(String id) {
            return id == null ? null : byId.get(id);
        }

        boolean isEmpty() {
            return byId.isEmpty();
        }

        Collection<Key> keys() {
            return Collections.unmodifiableCollection(byId.values());
        }
    }

    /** Reads a PEM public key file; anything but an Ed25519 key is an error. */
    static Key readPem(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.UTF_8);
        try {
            return parsePem(text, file.toString());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage());
        }
    }

    /**
     * Parses "-----BEGIN PUBLIC KEY----- base64(SPKI DER) -----END PUBLIC KEY-----" holding an
     * Ed25519 key. Throws IllegalArgumentException when it is anything else.
     */
    static Key parsePem(String pem, String origin) {
        String begin = "-----BEGIN PUBLIC KEY-----", end = "-----END PUBLIC KEY-----";
        int b = pem.indexOf(begin), e = pem.indexOf(end);
        if (b < 0 || e < b) throw new IllegalArgumentException("not a PEM public key");
        String body = pem.substring(b + begin.length(), e).replaceAll("\\s+", "");
        byte[] der = strictBase64(body);
        if (der == null) throw new IllegalArgumentException("PEM body is not base64");
        if (der.length != 44 || !Arrays.equals(Arrays.copyOf(der, 12), ED25519_SPKI_PREFIX)) {
            throw new IllegalArgumentException("not an Ed25519 public key");
        }
        PublicKey key;
        try {
            key = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(der));
        } catch (GeneralSecurityException | RuntimeException ex) {
            throw new IllegalArgumentException("not an Ed25519 public key: " + ex.getMessage());
        }
        return new Key(key, keyId(Arrays.copyOfRange(der, 12, 44)), origin);
    }

    /** §5: {@code "sha256:" + hex(SHA-256(raw 32-byte public key))}. */
    static String keyId(byte[] raw32) {
        try {
            return "sha256:" + Hex.of(MessageDigest.getInstance("SHA-256").digest(raw32));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Strict base64: the standard alphabet, length a multiple of 4, '=' only as one or two
     * final padding characters, nothing else. Returns null for anything else.
     */
    static byte[] strictBase64(String s) {
        if (s == null) return null;
        int n = s.length();
        if (n % 4 != 0) return null;
        int pad = 0;
        if (n > 0 && s.charAt(n - 1) == '=') pad++;
        if (n > 1 && s.charAt(n - 2) == '=') pad++;
        for (int i = 0; i < n - pad; i++) {
            char c = s.charAt(i);
            boolean ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                || c == '+' || c == '/';
            if (!ok) return null;
        }
        try {
            return Base64.getDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** Verifies an Ed25519 signature; false for any malformed input. */
    static boolean verify(PublicKey key, byte[] message, byte[] signature) {
        if (signature == null || signature.length != 64) return false;
        Signature v = VERIFIER.get();
        try {
            v.initVerify(key);
            v.update(message);
            return v.verify(signature);
        } catch (GeneralSecurityException | RuntimeException e) {
            return false;
        }
    }
}
