// Starts Swagger UI on the /docs page (internal/httpapi/docs.go). A file of its own, not an inline
// script, so the page's Content-Security-Policy can forbid inline scripts. Everything the page
// loads comes from this server: the OpenAPI document, this file and the vendored bundle.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var url = new URL(root.getAttribute("data-openapi"), document.baseURI).href;
  window.ui = SwaggerUIBundle({
    url: url,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // The validator badge would send the document to validator.swagger.io: off.
    validatorUrl: null,
    // ?url=... in the page's address must not make the page load someone else's document.
    queryConfigEnabled: false,
    deepLinking: true,
    filter: true,
    docExpansion: "list",
    displayOperationId: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 1,
    defaultModelExpandDepth: 3,
    defaultModelRendering: "model",
    showCommonExtensions: true,
    requestSnippetsEnabled: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
    withCredentials: false,
    syntaxHighlight: { activated: true, theme: "agate" }
  });
})();
