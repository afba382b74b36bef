// nginx configs of the benchmark: TLS in front of a plain-HTTP docker-registry (reference B), and a static
// file over TLS 1.3 (the machine's ceiling for one TLS stream). Everything nginx writes stays under `prefix`.

/** nginx.conf around one server block: a worker per core, pid and temp files under `prefix`, no access log. */
export function nginxMainConfig(prefix, serverBlock) {
  return `worker_processes auto;
pid ${prefix}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${serverBlock}
}
`;
}

function tlsLines({ cert, key }, protocols) {
  return `    ssl_certificate     ${cert};
    ssl_certificate_key ${key};
    ssl_protocols       ${protocols};
    ssl_session_cache   shared:TLS:10m;`;
}

/**
 * nginx terminating TLS for docker-registry on `upstream`, tuned for streaming layers: no buffering either
 * way, HTTP/1.1 and keep-alive to the upstream, 128k buffers. The registry does the authentication.
 */
export function registryProxyServer({ port, upstream, tls }) {
  return `  upstream docker_registry {
    server ${upstream};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port} ssl;
${tlsLines(tls, "TLSv1.2 TLSv1.3")}
    client_max_body_size      0;
    chunked_transfer_encoding on;
    proxy_request_buffering   off;
    proxy_buffering           off;
    proxy_http_version        1.1;
    client_body_buffer_size   128k;
    proxy_buffer_size         128k;
    proxy_buffers             8 128k;
    proxy_busy_buffers_size   256k;
    client_body_timeout       900s;
    send_timeout              900s;
    proxy_send_timeout        900s;
    proxy_read_timeout        900s;
    location /v2/ {
      proxy_pass http://docker_registry;
      # docker-registry builds its Location headers from Host and X-Forwarded-Proto.
      proxy_set_header Host              $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For   $remote_addr;
      proxy_set_header Connection        "";
    }
  }`;
}

/** nginx serving the files of `root` over TLS 1.3 only, with its defaults otherwise. */
export function staticFileServer({ port, root, tls }) {
  return `  server {
    listen 127.0.0.1:${port} ssl;
${tlsLines(tls, "TLSv1.3")}
    location / {
      root ${root};
    }
  }`;
}

/**
 * The floor: nginx answering skopeo's side of the registry protocol from its config and from the files of
 * an image's `dir:` layout under `root`, with no authentication and nothing stored. A push's uploads are
 * read and dropped (a blob HEAD says 404, so every byte is sent); a pull gets the image's manifest and
 * blobs as static files. No registry can answer skopeo faster on the same machine: what this side takes
 * is the client's own cost.
 */
export function floorRegistryServer({ port, root, tls }) {
  return `  server {
    listen 127.0.0.1:${port} ssl;
${tlsLines(tls, "TLSv1.2 TLSv1.3")}
    client_max_body_size 0;
    root ${root};
    location = /v2/ {
      default_type application/json;
      return 200 "{}";
    }
    location ~ ^/v2/(?<repo>.+)/blobs/uploads/$ {
      add_header Location /v2/$repo/blobs/uploads/$request_id always;
      add_header Range 0-0 always;
      return 202;
    }
    location ~ ^/v2/(?<repo>.+)/blobs/uploads/(?<upload>[^/]+)$ {
      if ($request_method = PUT) {
        return 201;
      }
      add_header Location /v2/$repo/blobs/uploads/$upload always;
      add_header Range 0-0 always;
      return 202;
    }
    location ~ ^/v2/.+/blobs/sha256:(?<hex>[0-9a-f]+)$ {
      if ($request_method = HEAD) {
        return 404;
      }
      default_type application/octet-stream;
      rewrite ^ /$hex break;
    }
    location ~ ^/v2/.+/manifests/ {
      if ($request_method = PUT) {
        return 201;
      }
      default_type application/vnd.oci.image.manifest.v1+json;
      rewrite ^ /manifest.json break;
    }
  }`;
}
