/* labelloop: starts Swagger UI on /docs (its files come from this server: no CDN, no inline
 * script). "Try it out" uses the session cookie; writes carry the session's CSRF token. */
(function () {
  "use strict";

  const root = document.getElementById("swagger-ui");
  const csrf = root.dataset.csrf;
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // the default asks validator.swagger.io on the internet
    presets: [window.SwaggerUIBundle.presets.apis],
    requestInterceptor: (request) => {
      if (csrf && request.method && request.method.toUpperCase() !== "GET") request.headers["X-CSRF-Token"] = csrf;
      return request;
    },
  });
})();
